"""What per-user data needs from services in other packages, as typing.Protocols (the
composition root, homeserver/node/wiring.py, hands it the implementations)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from homeserver.rooms.cache import RoomCache
from homeserver.storage.events import StoredEvent


class Rooms(Protocol):
    """Rooms' current state and events (homeserver.rooms.reader.RoomReader)."""

    async def room(self, room_id: str) -> RoomCache | None: ...

    async def require_joined(self, room_id: str, user_id: str) -> RoomCache: ...

    async def get_event(self, event_id: str) -> StoredEvent | None: ...


class ReceiptListener(Protocol):
    """Told of each public read receipt of a local user (room, user, event ID, ts, thread
    or None), to tell other servers (homeserver.federation.outbound.Outbound.on_receipt)."""

    def __call__(
        self, room: RoomCache, user_id: str, event_id: str, ts: int, thread_id: str | None, /
    ) -> None: ...


class ReadListener(Protocol):
    """Told of each read receipt of a local user, in the transaction that writes it (the
    connection, room ID, user, the event's stream position, the receipt's thread or None):
    the push actions up to it are read (homeserver.push.actions.PushActions.mark_read)."""

    async def __call__(
        self,
        conn: Any,
        room_id: str,
        user_id: str,
        stream_ordering: int,
        thread_id: str | None,
        /,
    ) -> None: ...


class IgnoreListCache(Protocol):
    """Cached ignore lists (homeserver.rooms.ignored.IgnoredUsers), told of each change."""

    def changed(self, user_id: str, content: Mapping[str, Any]) -> None: ...
