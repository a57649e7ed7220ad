"""Events as clients see them (the spec's ClientEvent), and stripped state for invites."""

from __future__ import annotations

from typing import Any

from homeserver.storage.events import StoredEvent


def client_event(
    event: StoredEvent,
    now_ms: int,
    *,
    include_room_id: bool = True,
    txn_id: str | None = None,
    redaction: StoredEvent | None = None,
    replaces: StoredEvent | None = None,
) -> dict[str, Any]:
    pdu = event.pdu
    out: dict[str, Any] = {
        "content": pdu.get("content", {}),
        "event_id": event.event_id,
        "origin_server_ts": pdu["origin_server_ts"],
        "sender": pdu["sender"],
        "type": pdu["type"],
    }
    if include_room_id:
        out["room_id"] = event.room_id
    if "state_key" in pdu:
        out["state_key"] = pdu["state_key"]
    if pdu["type"] == "m.room.redaction":
        redacts = pdu.get("redacts") or pdu.get("content", {}).get("redacts")
        if isinstance(redacts, str):
            out["redacts"] = redacts
    unsigned: dict[str, Any] = {"age": max(0, now_ms - int(pdu["origin_server_ts"]))}
    if txn_id is not None:
        unsigned["transaction_id"] = txn_id
    if redaction is not None:
        unsigned["redacted_because"] = client_event(
            redaction, now_ms, include_room_id=include_room_id
        )
    if replaces is not None and "state_key" in pdu:
        unsigned["replaces_state"] = replaces.event_id
        unsigned["prev_content"] = replaces.pdu.get("content", {})
        unsigned["prev_sender"] = replaces.sender
    invite_state = pdu.get("unsigned", {}).get("invite_room_state")
    if isinstance(invite_state, list):
        unsigned["invite_room_state"] = invite_state
    out["unsigned"] = unsigned
    return out


#: State events a user sees of a room they are invited to or knocking on.
STRIPPED_STATE_TYPES = (
    "m.room.create",
    "m.room.join_rules",
    "m.room.name",
    "m.room.avatar",
    "m.room.canonical_alias",
    "m.room.encryption",
    "m.room.topic",
)


def stripped_event(event: StoredEvent) -> dict[str, Any]:
    return {
        "content": event.pdu.get("content", {}),
        "sender": event.sender,
        "state_key": event.state_key or "",
        "type": event.type,
    }
