"""What push needs from services in other packages, as typing.Protocols (the composition
root, homeserver/node/wiring.py, hands it the implementations)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from homeserver.rooms.cache import RoomCache
from homeserver.storage.events import StoredEvent


class RoomReads(Protocol):
    """Events and rooms' current state (homeserver.rooms.reader.RoomReader)."""

    async def get_event(self, event_id: str) -> StoredEvent | None: ...

    async def get_events(self, event_ids: Iterable[str]) -> dict[str, StoredEvent]: ...

    async def room(self, room_id: str) -> RoomCache | None: ...

    async def state_content(
        self, room: RoomCache, event_type: str, state_key: str = ""
    ) -> dict[str, Any]: ...


class IgnoreLists(Protocol):
    """Users' ignore lists (homeserver.rooms.ignored.IgnoredUsers)."""

    async def of_many(self, users: Iterable[str]) -> dict[str, frozenset[str]]: ...
