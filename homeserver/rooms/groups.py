"""What a room's group commit holds (see groupcommit.py): the message events queued, the
groups built of them, where the next event goes, and the two stages of the pipeline."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from homeserver.rooms.hooks import HookWrite
from homeserver.storage.events import StoredEvent

#: Most message events committed in one transaction.
MAX_GROUP = 100
#: Most prev events of a new event (when the room has several forward extremities).
MAX_PREV_EVENTS = 10

TxnKey = tuple[str, str, str]


@dataclass
class Pending:
    """A message event waiting to be built and committed."""

    sender: str
    event_type: str
    content: dict[str, Any]
    #: (device ID, transaction key) of the request, for idempotent retries.
    txn: tuple[str, str] | None
    extra: Mapping[str, Any] | None
    future: asyncio.Future[str] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    #: Set when built, or when the transaction turned out to be a retry.
    event_id: str | None = None

    @property
    def key(self) -> TxnKey | None:
        return (self.sender, *self.txn) if self.txn is not None else None


@dataclass
class Tip:
    """Where the next event goes: the room's forward extremities and depth once every
    group built so far is committed."""

    extremities: list[str]
    depth: int


@dataclass
class Group:
    """Message events built as a chain on one tip, to be written in one transaction."""

    items: list[Pending]
    stored: list[StoredEvent]
    #: Transaction key -> event ID of the events built in this group.
    txns: dict[TxnKey, str]
    #: The stream positions of ``stored``, in flight until released in the write.
    positions: contextlib.ExitStack
    writes: list[HookWrite]
    prev_events: list[str]
    tip: Tip

    def abandon(self) -> None:
        self.positions.close()

    def extend(self, later: Group) -> None:
        """Take in a group built on this one (so that both are written together)."""
        self.items += later.items
        if later.stored:
            if not self.stored:
                self.prev_events = later.prev_events
            self.stored += later.stored
            self.txns.update(later.txns)
            self.positions.enter_context(later.positions.pop_all())
            self.writes += later.writes
            self.tip = later.tip


@dataclass
class Stages:
    """The pipeline of one room: the group being written (with its task), the group being
    built on it, where the next event goes, and the batch taken from the queue last."""

    tip: Tip
    writing: tuple[Group, asyncio.Task[None]] | None = None
    ready: Group | None = None
    batch: list[Pending] = field(default_factory=list)
    #: No group was built yet (the first is built even when someone waits for the lock).
    fresh: bool = True

    def room_left(self) -> int:
        """How many more events the group being built takes."""
        return MAX_GROUP - (len(self.ready.items) if self.ready is not None else 0)

    def in_flight(self) -> dict[TxnKey, str]:
        """The transactions of the groups built but not committed yet."""
        return {
            **(self.writing[0].txns if self.writing is not None else {}),
            **(self.ready.txns if self.ready is not None else {}),
        }
