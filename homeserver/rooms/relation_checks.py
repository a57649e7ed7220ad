"""What the spec has a server refuse of a local user's related event before sending it:
a second identical annotation (``M_DUPLICATE_ANNOTATION``, "Avoiding duplicate
annotations") and a thread started off an event that has a relation itself (400
``M_UNKNOWN``, "Validation of m.thread relationships"), as Synapse does."""

from __future__ import annotations

from typing import Any

from homeserver.common.errors import MatrixError
from homeserver.rooms.reader import RoomReader
from homeserver.storage import relations as relation_store
from homeserver.storage import txns as txn_store
from homeserver.storage.events import relation_of


async def check_relation(
    rooms: RoomReader,
    room_id: str,
    sender: str,
    event_type: str,
    content: dict[str, Any],
    txn: tuple[str, str],
) -> None:
    """``txn``: the request's (device ID, transaction key): a retried request is answered
    with its first event, never refused as its own duplicate."""
    relation = relation_of({"content": content})
    if relation is None:
        return
    rel_type, parent_id = relation
    if rel_type == relation_store.ANNOTATION:
        key = content["m.relates_to"].get("key")
        if not isinstance(key, str):
            return  # not an annotation the spec knows: nothing to compare
        async with rooms.db.read() as conn:
            keys = await relation_store.annotation_keys(conn, parent_id, event_type, sender)
            retried = key in keys and await txn_store.get_txn_event(conn, sender, *txn)
        if key in keys and not retried:
            raise MatrixError(400, "M_DUPLICATE_ANNOTATION", "Can't send the same reaction twice")
    elif rel_type == relation_store.THREAD:
        parent = await rooms.get_event(parent_id)
        if parent is not None and parent.room_id == room_id and relation_of(parent.pdu):
            raise MatrixError(
                400, "M_UNKNOWN", "Cannot start threads from an event with a relation"
            )
