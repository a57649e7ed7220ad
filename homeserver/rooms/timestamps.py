"""``timestamp_to_event``: the event of a room nearest a point in time, in a direction
(``f``: at or after it, ``b``: at or before it), as Synapse's ``TimestampLookupHandler``
finds it. A user must be able to read the room (joined, or a world-readable room; 403
otherwise, as Synapse), and only an event they may see by the room's history visibility is
answered; 404 ``M_NOT_FOUND`` when there is none.

This node's events come first. When it has none in that direction, or the one it found is
at the edge of what it has of the room (looking forwards: one of its prev events is not in
the timeline here, a backward extremity; looking backwards: no event here follows it and it
is not one of the room's newest), the other servers in the room are asked over federation
(``rooms/ports.py`` ``RemoteTimestamps``), the event they name is fetched, and the nearer
of the two is answered."""

from __future__ import annotations

from homeserver.common.errors import MatrixError, not_found
from homeserver.rooms.cache import RoomCache
from homeserver.rooms.ports import RemoteTimestamps
from homeserver.rooms.reader import RoomReader
from homeserver.rooms.visibility import Reader, Visibility
from homeserver.storage import events as event_store
from homeserver.storage import extremities as extremity_store
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


def _ts(event: StoredEvent) -> int:
    value = event.pdu.get("origin_server_ts")
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


class TimestampLookup:
    def __init__(
        self, reader: RoomReader, visibility: Visibility, remote: RemoteTimestamps | None = None
    ) -> None:
        self.reader = reader
        self.visibility = visibility
        #: Other servers of the room, asked where this node's history has a gap (None: never).
        self.remote = remote

    async def for_user(self, user_id: str, room_id: str, ts: int, forward: bool) -> StoredEvent:
        seeing = await self.visibility.reader(user_id, room_id)
        local = await self._local(user_id, seeing, ts, forward)
        if self.remote is not None and (
            local is None or await self.next_to_gap(seeing.room, local, forward)
        ):
            remote = await self._remote(user_id, seeing, ts, forward)
            if remote is not None and (
                local is None or abs(_ts(remote) - ts) < abs(_ts(local) - ts)
            ):
                return remote
        if local is None:
            direction = "f" if forward else "b"
            raise not_found(f"Unable to find an event from {ts} in direction {direction}")
        return local

    async def _local(
        self, user_id: str, seeing: Reader, ts: int, forward: bool
    ) -> StoredEvent | None:
        found = await candidates(self.reader, seeing.room.room_id, ts, forward)
        horizon = seeing.caps(None)
        if horizon is not None:
            found = [e for e in found if e.stream_ordering <= horizon]
        for event in found:
            if await self.visibility.events(user_id, seeing.room, [event]):
                return event
        return None

    async def next_to_gap(self, room: RoomCache, event: StoredEvent, forward: bool) -> bool:
        """Whether history this node lacks may lie between the time asked and ``event``:
        looking forwards, a prev event of it is not in the timeline here (so older events
        are missing); looking backwards, no event here follows it though it is not one of
        the room's forward extremities (so newer events are missing)."""
        if forward:
            prevs = [p for p in event.pdu.get("prev_events", []) if isinstance(p, str)]
            known = await self.reader.get_events(prevs)
            return any(p not in known or known[p].outlier for p in prevs)
        if event.event_id in room.extremities:
            return False
        async with self.reader.db.read() as conn:
            return not await extremity_store.has_timeline_successor(conn, event.event_id)

    async def _remote(
        self, user_id: str, seeing: Reader, ts: int, forward: bool
    ) -> StoredEvent | None:
        """The event another server names, once fetched, if it is on the asked side of
        ``ts`` and the user may see it."""
        assert self.remote is not None
        event_id = await self.remote.closest(seeing.room, ts, forward)
        event = await self.reader.get_event(event_id) if event_id is not None else None
        if (
            event is None
            or event.outlier
            or event.room_id != seeing.room.room_id
            or (_ts(event) < ts if forward else _ts(event) > ts)
            or event.stream_ordering != seeing.caps(event.stream_ordering)
        ):
            return None
        if not await self.visibility.events(user_id, seeing.room, [event]):
            return None
        return event
