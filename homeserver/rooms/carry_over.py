"""What a room upgrade carries over for each local member of the old room, as Synapse's
``copy_user_state_on_room_upgrade``: their tags of the room (its ``m.tag`` account data)
and their ``m.direct`` entries naming it (the new room is added beside the old one).
(Their push rules for the room are copied by the push rules service: upgrade.py.)"""

from __future__ import annotations

from typing import Any

from homeserver.common.notifier import Notifier
from homeserver.storage import userdata as store
from homeserver.storage.database import Database

TAGS = "m.tag"
DIRECT = "m.direct"


def with_successor(direct: Any, old_room_id: str, new_room_id: str) -> dict[str, Any] | None:
    """``m.direct`` content with the new room added wherever the old one is listed (None
    when it names the old room nowhere, or is not the spec's shape)."""
    if not isinstance(direct, dict):
        return None
    changed = False
    updated: dict[str, Any] = {}
    for user, rooms in direct.items():
        if isinstance(rooms, list) and old_room_id in rooms and new_room_id not in rooms:
            updated[user] = [*rooms, new_room_id]
            changed = True
        else:
            updated[user] = rooms
    return updated if changed else None


async def carry_over(
    db: Database, notifier: Notifier, users: list[str], old_room_id: str, new_room_id: str
) -> None:
    touched: list[str] = []
    for user_id in users:
        async with db.write() as conn:
            tags = await store.get_account_data(conn, user_id, old_room_id, TAGS)
            direct = with_successor(
                await store.get_account_data(conn, user_id, "", DIRECT), old_room_id, new_room_id
            )
            if tags is None and direct is None:
                continue
            with db.stream.allocate() as position:
                if tags is not None:
                    await store.put_account_data(conn, user_id, new_room_id, TAGS, tags, position)
                if direct is not None:
                    await store.put_account_data(conn, user_id, "", DIRECT, direct, position)
        touched.append(user_id)
    if touched:
        notifier.notify(touched)
