"""Persisting events received from other servers, a batch at a time.

The federation pipeline decides what each received event is (accepted, soft-failed,
rejected, an outlier), which state it has and how the room's current state changes; this
module writes a whole batch of such events in one database transaction (events, edges,
state groups, current state, memberships, forward extremities, redactions), and only then
updates the in-memory room and tells listeners.  One transaction per batch means one
fsync for all the PDUs of a ``/send`` instead of one each.

State groups a batch needs are described by :class:`NewGroup` (a parent and changes) and
created in the batch's transaction, in order, so a group may build on one made earlier in
the same batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from federation.identifiers import domain_of
from homeserver.rooms.cache import RoomCache, StateKey
from homeserver.rooms.service import RoomService
from homeserver.rooms.service import redacts as redacted_event_id
from homeserver.storage import events as event_store
from homeserver.storage import extremities as extremity_store
from homeserver.storage import redactions as redaction_store
from homeserver.storage import rooms as room_store
from homeserver.storage.events import StoredEvent

log = logging.getLogger(__name__)

StateMap = dict[StateKey, str]


@dataclass(eq=False)
class NewGroup:
    """A state group to create in the batch's transaction: ``parent``'s state plus
    ``changes`` (None removes a key)."""

    parent: GroupRef
    changes: dict[StateKey, str | None]
    id: int | None = None


GroupRef = int | NewGroup | None


@dataclass
class IncomingEvent:
    """One received event as it is to be stored."""

    event_id: str
    pdu: dict[str, Any]
    #: The state group after the event: for a rejected one the state before it; None for
    #: outliers.
    group: GroupRef = None
    rejected_reason: str | None = None
    soft_failed: bool = False
    outlier: bool = False
    backfilled: bool = False
    #: Stream position chosen in advance (backfill); None: the next one.
    position: int | None = None
    #: How the room's current state changes with this event, and its group afterwards.
    current_changes: dict[StateKey, str | None] = field(default_factory=dict)
    current_group: GroupRef = None
    #: For a redaction: its sender had the power to redact others' events (else it
    #: redacts only events of its own server's users, as Synapse applies them).
    redacts_any: bool = False

    @property
    def shown(self) -> bool:
        """Whether clients see it (and listeners hear of it)."""
        return not self.outlier and self.rejected_reason is None and not self.soft_failed


@dataclass
class IncomingBatch:
    room: RoomCache
    events: list[IncomingEvent] = field(default_factory=list)
    #: The room's forward extremities after the batch (None: unchanged).
    extremities: list[str] | None = None
    depth: int | None = None


def state_changes(
    old: Mapping[StateKey, str], new: Mapping[StateKey, str]
) -> dict[StateKey, str | None]:
    """The changes that turn ``old`` into ``new`` (None removes a key)."""
    changes: dict[StateKey, str | None] = {k: v for k, v in new.items() if old.get(k) != v}
    changes.update({k: None for k in old if k not in new})
    return changes


class IncomingStore:
    def __init__(self, rooms: RoomService) -> None:
        self.rooms = rooms
        self.db = rooms.db
        self.state_store = rooms.state_store
        #: Per room: held while writing received events, so that outliers stored outside
        #: the room's lock (while fetching) never race a batch for the same event's row.
        self._locks: dict[str, asyncio.Lock] = {}

    def _lock(self, room_id: str) -> asyncio.Lock:
        return self._locks.setdefault(room_id, asyncio.Lock())

    async def write(self, batch: IncomingBatch) -> list[StoredEvent]:
        """Persist ``batch`` in one transaction; returns the events stored (an event
        already in the timeline is skipped; an outlier of it is replaced)."""
        room = batch.room
        async with self._lock(room.room_id):
            try:
                with contextlib.ExitStack() as positions:
                    async with self.db.write() as conn:
                        todo, stored, redacted = await self._write_rows(conn, positions, batch)
            except BaseException:
                self.state_store.forget_cache()
                raise
        for event in stored:
            self.rooms.events.put(event)
        for target in redacted:
            self.rooms.events.invalidate(target)
        await self._update_room(batch, todo)
        for e, event in zip(todo, stored, strict=True):
            if e.shown:
                self.rooms.after_persist(room, event)
        return stored

    async def _write_rows(
        self, conn: Any, positions: contextlib.ExitStack, batch: IncomingBatch
    ) -> tuple[list[IncomingEvent], list[StoredEvent], list[str]]:
        """Write the batch in the transaction ``conn``: the events not stored yet, the
        room's current state, memberships and forward extremities, the redactions and the
        hooks' rows.  (the events written, as stored, and the IDs of the events redacted)"""
        room = batch.room
        existing = await event_store.outlier_flags(conn, [e.event_id for e in batch.events])
        todo = [
            e
            for e in batch.events
            if e.event_id not in existing or (existing[e.event_id] and not e.outlier)
        ]
        replaced = [e.event_id for e in todo if e.event_id in existing]
        if replaced:
            await event_store.delete_outliers(conn, replaced)
        stored: list[StoredEvent] = []
        for e in todo:
            position = e.position
            if position is None:
                position = positions.enter_context(self.db.stream.allocate())
            stored.append(
                StoredEvent(
                    e.event_id, position, room.room_id, e.pdu,
                    await self._group(conn, room, e.group),
                    e.rejected_reason, e.outlier, e.soft_failed,
                )
            )  # fmt: skip
        await event_store.insert_events(conn, stored)
        await self._write_current_state(conn, room, todo, stored)
        if batch.extremities is not None:
            before, after = set(room.extremities), set(batch.extremities)
            await extremity_store.set_forward_extremities(
                conn, room.room_id, sorted(before - after), sorted(after - before)
            )
        redacted = await self._redactions(conn, room, todo, stored)
        shown = [s for e, s in zip(todo, stored, strict=True) if e.shown]
        await self.rooms.run_hooks(conn, room, shown)
        return todo, stored, redacted

    async def _write_current_state(
        self, conn: Any, room: RoomCache, todo: list[IncomingEvent], stored: list[StoredEvent]
    ) -> None:
        """The room's current state and memberships as the events change them."""
        pdus = {e.event_id: e.pdu for e in todo}
        for e, s in zip(todo, stored, strict=True):
            if e.current_changes:
                await self._group(conn, room, e.current_group)
                await room_store.update_current_state(
                    conn, room.room_id, e.current_changes, s.stream_ordering
                )
                await self._update_memberships(
                    conn, room, e.current_changes, s.stream_ordering, pdus
                )

    async def _redactions(
        self, conn: Any, room: RoomCache, todo: list[IncomingEvent], stored: list[StoredEvent]
    ) -> list[str]:
        """Apply the batch's redactions; one whose target is not stored yet waits for it
        (``pending_redactions``), and the batch's events that such redactions wait for are
        redacted now.  Returns the IDs of the events redacted."""
        redacted: list[str] = []
        redactions = [
            (e, target)
            for e in todo
            if e.shown and (target := redacted_event_id(e.pdu, room)) is not None
        ]
        if redactions:
            known = await event_store.get_events(conn, [t for _, t in redactions])
            for e, target in redactions:
                if target not in known:
                    pending = redaction_store.PendingRedaction(
                        target, e.event_id, room.room_id, str(e.pdu["sender"]), e.redacts_any
                    )
                    await redaction_store.add_pending_redaction(conn, pending)
                elif _may_redact(e.redacts_any, str(e.pdu["sender"]), known[target].sender):
                    await self.rooms.apply_redaction(conn, room, e.event_id, target)
                    redacted.append(target)
                else:
                    log.info("not applying redaction %s to %s: no power", e.event_id, target)
        arrived = {s.event_id: s for s in stored if s.rejected_reason is None}
        for late in await redaction_store.take_pending_redactions(conn, list(arrived)):
            target_sender = arrived[late.target_id].sender
            if late.room_id == room.room_id and _may_redact(
                late.redacts_any, late.sender, target_sender
            ):
                await self.rooms.apply_redaction(conn, room, late.redaction_id, late.target_id)
                redacted.append(late.target_id)
        return redacted

    async def _group(self, conn: Any, room: RoomCache, ref: GroupRef) -> int | None:
        """The ID of a group, creating it (and the new groups it builds on) first."""
        if not isinstance(ref, NewGroup):
            return ref
        if ref.id is None:
            parent = await self._group(conn, room, ref.parent)
            ref.id = await self.state_store.create_group(conn, room.room_id, parent, ref.changes)
        return ref.id

    async def _update_room(self, batch: IncomingBatch, todo: list[IncomingEvent]) -> None:
        """The in-memory room after a committed batch."""
        room = batch.room
        changed: dict[StateKey, str | None] = {}
        new_group: GroupRef = None
        group_changed = False
        for e in todo:
            if not e.current_changes:
                continue
            for key, value in e.current_changes.items():
                if value is None:
                    room.state.pop(key, None)
                else:
                    room.state[key] = value
                changed[key] = value
            new_group, group_changed = e.current_group, True
        if changed:
            await self._refresh_members(room, changed)
        if group_changed:
            # Only now that the members are refreshed: caches keyed by the state group (the
            # local members for push actions) must not pair the new group with old members.
            room.state_group = new_group.id if isinstance(new_group, NewGroup) else new_group
        if batch.extremities is not None:
            room.extremities = list(batch.extremities)
        if batch.depth is not None:
            room.depth = max(room.depth, batch.depth)

    async def _update_memberships(
        self,
        conn: Any,
        room: RoomCache,
        changes: Mapping[StateKey, str | None],
        position: int,
        known: Mapping[str, dict[str, Any]],
    ) -> None:
        member_ids = [e for (t, _), e in changes.items() if t == "m.room.member" and e is not None]
        if not member_ids:
            return
        loaded = {
            k: v.pdu
            for k, v in (
                await event_store.get_events(conn, [e for e in member_ids if e not in known])
            ).items()
        }
        loaded.update({k: v for k, v in known.items() if k in member_ids})
        for (event_type, user_id), event_id in changes.items():
            if event_type != "m.room.member" or event_id is None:
                continue
            pdu = loaded.get(event_id)
            membership = pdu.get("content", {}).get("membership") if pdu else None
            if isinstance(membership, str):
                await room_store.set_membership(
                    conn, room.room_id, user_id, membership, event_id, position
                )

    async def _refresh_members(
        self, room: RoomCache, changes: Mapping[StateKey, str | None]
    ) -> None:
        member_ids = {k[1]: v for k, v in changes.items() if k[0] == "m.room.member"}
        found = await self.rooms.get_events(e for e in member_ids.values() if e)
        for user_id, event_id in member_ids.items():
            event = found.get(event_id) if event_id else None
            membership = event.pdu.get("content", {}).get("membership") if event else None
            if isinstance(membership, str):
                room.members[user_id] = membership
            else:
                room.members.pop(user_id, None)

    # ------------------------------------------------------------- convenience

    async def write_outliers(
        self, room: RoomCache, events: Iterable[tuple[str, dict[str, Any], str | None]]
    ) -> None:
        """Store ``(event_id, pdu, rejected_reason)`` as outliers in one transaction."""
        batch = IncomingBatch(
            room, [IncomingEvent(i, p, rejected_reason=r, outlier=True) for i, p, r in events]
        )
        if batch.events:
            await self.write(batch)

    async def persist_join(
        self, room: RoomCache, event_id: str, pdu: dict[str, Any], state_before: StateMap
    ) -> StoredEvent:
        """This node's own join of a room over federation, with the room's state before it
        (from the resident server): the join becomes the only forward extremity and the
        state after it the current state."""
        key = ("m.room.member", pdu["state_key"])
        after = NewGroup(NewGroup(None, dict(state_before)), {key: event_id})
        current = {**state_before, key: event_id}
        event = IncomingEvent(
            event_id, pdu, group=after,
            current_changes=state_changes(room.state, current), current_group=after,
        )  # fmt: skip
        depth = pdu.get("depth")
        batch = IncomingBatch(
            room, [event], extremities=[event_id], depth=depth if isinstance(depth, int) else 0
        )
        stored = await self.write(batch)
        return stored[0] if stored else await self._require(event_id)

    async def _require(self, event_id: str) -> StoredEvent:
        event = await self.rooms.get_event(event_id)
        assert event is not None, event_id
        return event


def _may_redact(redacts_any: bool, redaction_sender: str, target_sender: str) -> bool:
    """Room versions 3+ accept any redaction event; it is applied to an event of another
    server's user only when its sender may redact others' events."""
    return redacts_any or domain_of(target_sender) == domain_of(redaction_sender)
