"""``timestamp_to_event``: the event of a room nearest a point in time, in a direction
(``f``: at or after it, ``b``: at or before it), as Synapse's ``TimestampLookupHandler``
finds it from this node's events. A user must be able to read the room (joined, or a
world-readable room; 403 otherwise, as Synapse), and only an event they may see by the
room's history visibility is answered; 404 ``M_NOT_FOUND`` when there is none."""

from __future__ import annotations

from homeserver.common.errors import MatrixError, not_found
from homeserver.rooms.reader import RoomReader
from homeserver.rooms.visibility import Visibility
from homeserver.storage import events as event_store
from homeserver.storage.events import StoredEvent

#: At most this many events near the time are looked at for one the user may see.
CANDIDATES = 100


def parse_direction(raw: str | None) -> bool:
    """``dir`` (required): whether forwards."""
    if raw not in ("f", "b"):
        raise MatrixError(400, "M_INVALID_PARAM", "dir must be 'f' or 'b'")
    return raw == "f"


def parse_ts(raw: str | None) -> int:
    if raw is None:
        raise MatrixError(400, "M_MISSING_PARAM", "Missing ts")
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 16:
        raise MatrixError(400, "M_INVALID_PARAM", "ts must be a timestamp in milliseconds")
    return int(raw)


async def candidates(reader: RoomReader, room_id: str, ts: int, forward: bool) -> list[StoredEvent]:
    async with reader.db.read() as conn:
        return await event_store.near_timestamp(conn, room_id, ts, forward, CANDIDATES)


class TimestampLookup:
    def __init__(self, reader: RoomReader, visibility: Visibility) -> None:
        self.reader = reader
        self.visibility = visibility

    async def for_user(self, user_id: str, room_id: str, ts: int, forward: bool) -> StoredEvent:
        seeing = await self.visibility.reader(user_id, room_id)
        found = await candidates(self.reader, room_id, ts, forward)
        horizon = seeing.caps(None)
        if horizon is not None:
            found = [e for e in found if e.stream_ordering <= horizon]
        for event in found:
            if await self.visibility.events(user_id, seeing.room, [event]):
                return event
        raise not_found(f"Unable to find an event from {ts} in direction {'f' if forward else 'b'}")
