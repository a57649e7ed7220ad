"""What RoomService tells about new events: hooks and the outbox, written in the transaction
that stores them (push actions; the federation queue), and listeners, called after commit.

A hook's :meth:`EventHook.prepare` works out what to write for a batch of new events,
local or received; the returned :class:`HookWrite` is then written inside the transaction
that stores the events.  Group commit (``groupcommit.py``) prepares a group's hooks while
the group before it is being written, and runs their statements in the same trip to the
database as the events' own.

These are implemented in other packages (push, federation, admin): the composition root
hands them to :class:`~homeserver.rooms.service.RoomService` when it builds it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from homeserver.rooms.cache import RoomCache
from homeserver.storage import driver
from homeserver.storage.events import StoredEvent


@dataclass
class HookWrite:
    """What a hook writes with new events, in the transaction that stores them."""

    #: Run with the events' own statements (on SQLite, in the same trip to the database).
    statements: list[driver.Statement] = field(default_factory=list)
    #: Then this, for writes that need the connection (reads in the transaction).
    run: Callable[[Any], Awaitable[None]] | None = None
    #: Called once all of the above is in the transaction.
    written: Callable[[], None] | None = None


class EventHook(Protocol):
    """Something written with every batch of new events, local or received, in the
    transaction that stores them (push actions)."""

    async def prepare(self, room: RoomCache, events: Sequence[StoredEvent]) -> HookWrite | None:
        """Work out what to write for ``events`` (which have their stream positions and
        state group, but may not be stored yet); the room's state is theirs."""


async def finish_hooks(conn: Any, writes: list[HookWrite]) -> None:
    """What the hooks write after their statements have run."""
    for write in writes:
        if write.run is not None:
            await write.run(conn)
    for write in writes:
        if write.written is not None:
            write.written()


class EventListener(Protocol):
    """Called with each newly persisted event, local or received, after its commit (the
    federation sender, push, metrics...).  It must not block (spawn a task to wait)."""

    def __call__(self, room: RoomCache, event: StoredEvent, /) -> None: ...


class Outbox(Protocol):
    """Called inside the transaction that persists a local event, to queue it for other
    servers in the same transaction (so that a crash cannot lose it)."""

    async def __call__(self, conn: Any, room: RoomCache, pdu: dict[str, Any], /) -> None: ...
