"""In-memory caches of events and of each room's current state (the database is the truth)."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Literal

from federation.room_versions import RoomVersion
from homeserver.storage.events import StoredEvent

StateKey = tuple[str, str]


class EventCache:
    def __init__(self, size: int = 50_000) -> None:
        self._events: OrderedDict[str, StoredEvent] = OrderedDict()
        self._size = size

    def get(self, event_id: str) -> StoredEvent | None:
        found = self._events.get(event_id)
        if found is not None:
            self._events.move_to_end(event_id)
        return found

    def put(self, event: StoredEvent) -> None:
        self._events[event.event_id] = event
        self._events.move_to_end(event.event_id)
        while len(self._events) > self._size:
            self._events.popitem(last=False)

    def invalidate(self, event_id: str) -> None:
        self._events.pop(event_id, None)


class RoomLock(asyncio.Lock):
    """A room's lock, which knows whether anyone is waiting for it (so that group commit,
    which holds it while events keep coming, can step aside)."""

    def __init__(self) -> None:
        super().__init__()
        self.waiting = 0

    async def acquire(self) -> Literal[True]:
        self.waiting += 1
        try:
            return await super().acquire()
        finally:
            self.waiting -= 1


@dataclass
class RoomCache:
    """A room's current state, forward extremities and depth, and the lock for sending."""

    room_id: str
    version: RoomVersion
    state: dict[StateKey, str]
    state_group: int | None
    extremities: list[str]
    depth: int
    #: user ID -> current membership (join, invite, leave, ban, knock)
    members: dict[str, str] = field(default_factory=dict)
    lock: RoomLock = field(default_factory=RoomLock)
    #: Message events waiting to be built and committed together (group commit).
    pending: list[Any] = field(default_factory=list)
    drainer: asyncio.Task[None] | None = None
    #: Set while the drainer waits for a write to end, to wake it when a message is queued.
    wakeup: asyncio.Future[None] | None = None

    def joined(self) -> list[str]:
        return [u for u, m in self.members.items() if m == "join"]

    def interested(self) -> set[str]:
        """Users to wake for a new event: joined and invited members."""
        return {u for u, m in self.members.items() if m in ("join", "invite", "knock")}
