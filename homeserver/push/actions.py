"""Push actions at persist time: whom each new event notifies, like Synapse's
``event_push_actions``.

:meth:`PushActions.on_event` is a listener of :class:`RoomService` (called synchronously
right after an event is committed, before anyone can have synced it): it snapshots the
room's local joined members and queues the event.  A background task takes the queue in
batches, evaluates each member's push rules (never for their own events) and writes one
row per notified user in a single transaction.  /sync's ``unread_notifications`` first
waits for the events of the room queued so far (:meth:`settled`), so the count that an
event changes arrives in the same /sync response as the event, as the spec requires.
Read receipts delete the rows up to them (:meth:`mark_read`), redactions the rows of the
redacted event, leaving a room the user's rows in it.

Compiled rules are cached per user (users who never changed their rules share one rule
set) and dropped when the user changes a rule; the local members of a room are cached
until its state changes.  Events that only rebuild state (backfill, outliers, rejected or
soft-failed events) notify no one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from federation.auth.power import user_power_level
from federation.errors import FederationError
from homeserver.push.evaluator import EventFacts, RuleSet, compile_rules
from homeserver.push.rules import evaluation_order
from homeserver.rooms.cache import RoomCache
from homeserver.rooms.service import RoomService
from homeserver.storage import push as store
from homeserver.storage.database import Database
from homeserver.storage.events import StoredEvent

log = logging.getLogger(__name__)

BATCH = 200
ROWS_PER_SQLITE_TRANSACTION = 250
MAX_CACHED_USERS = 100_000
#: /sync waits at most this long for pending push actions (never forever on a bug).
SETTLE_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class _Queued:
    seq: int
    room: RoomCache
    event: StoredEvent
    #: Local users to evaluate (joined at persist time, plus a local invitee).
    users: tuple[str, ...]
    member_count: int


@dataclass(frozen=True)
class _Members:
    key: tuple[int | None, int]
    local_joined: tuple[str, ...]
    joined_count: int


class PushActions:
    def __init__(self, db: Database, rooms: RoomService, server_name: str) -> None:
        self.db = db
        self.rooms = rooms
        self._suffix = ":" + server_name
        self._default = compile_rules(evaluation_order(None))
        self._rules: dict[str, RuleSet] = {}
        self._by_json: dict[str, RuleSet] = {}
        #: Users whose rules changed while their rules were being loaded (not cached then).
        self._changed: set[str] = set()
        self._members: dict[str, _Members] = {}
        self._queue: deque[_Queued] = deque()
        self._seq = 0
        self._done = 0
        self._last_of_room: dict[str, int] = {}
        self._progress = asyncio.Event()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        #: Called with the users who got new notifications (the pusher pool).
        self.on_notified: Callable[[set[str]], None] = lambda users: None
        #: Milliseconds spent evaluating and storing, and events handled (for measuring).
        self.busy_ms = 0.0
        self.events_done = 0

    # ------------------------------------------------------------- hooks

    def on_event(self, room: RoomCache, event: StoredEvent) -> None:
        """RoomService listener: queue a newly persisted event (no I/O here)."""
        if event.stream_ordering <= 0 or event.outlier or event.rejected_reason:
            return
        if event.soft_failed:
            return
        members = self._local_members(room)
        users = [u for u in members.local_joined if u != event.sender]
        target = event.state_key
        if (
            event.type == "m.room.member"
            and target is not None
            and target.endswith(self._suffix)
            and target != event.sender
            and target not in members.local_joined
            and event.pdu.get("content", {}).get("membership") == "invite"
        ):
            users.append(target)  # so that .m.rule.invite_for_me can notify them
        self._seq += 1
        self._queue.append(_Queued(self._seq, room, event, tuple(users), members.joined_count))
        self._last_of_room[room.room_id] = self._seq
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())
        self._wakeup.set()

    def rules_changed(self, user_id: str) -> None:
        self._rules.pop(user_id, None)
        self._changed.add(user_id)

    async def mark_read(self, room_id: str, user_id: str, stream_ordering: int) -> None:
        """After a read receipt: the notifications up to its event are read (deleted)."""
        await self.settled(room_id)
        async with self.db.write() as conn:
            await store.delete_read(conn, room_id, user_id, stream_ordering)

    async def settled(self, room_id: str) -> None:
        """Wait until the events of the room queued so far have their push actions."""
        await self._wait_for(self._last_of_room.get(room_id), SETTLE_TIMEOUT_S)

    async def _wait_for(self, target: int | None, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while target is not None and self._done < target:
            progress = self._progress
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                log.warning("push actions still pending after %.0f s", timeout_s)
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(progress.wait(), remaining)

    async def close(self) -> None:
        """Finish the queue (for a few seconds at most), then stop."""
        if self._task is not None:
            if not self._task.done():
                await self._wait_for(self._seq, 5.0)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    # ------------------------------------------------------------- members

    def _local_members(self, room: RoomCache) -> _Members:
        key = (room.state_group, len(room.members))
        cached = self._members.get(room.room_id)
        if cached is not None and cached.key == key:
            return cached
        joined = [u for u, m in room.members.items() if m == "join"]
        local = tuple(u for u in joined if u.endswith(self._suffix))
        found = _Members(key, local, len(joined))
        self._members[room.room_id] = found
        return found

    # ------------------------------------------------------------- the worker

    async def _run(self) -> None:
        while True:
            if not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            batch = [self._queue.popleft() for _ in range(min(BATCH, len(self._queue)))]
            started = time.perf_counter()
            notified: set[str] = set()
            try:
                notified = await self._handle(batch)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("push actions failed for %d events", len(batch))
            self.busy_ms += (time.perf_counter() - started) * 1000
            self.events_done += len(batch)
            self._done = batch[-1].seq
            for item in batch:
                if self._last_of_room.get(item.room.room_id, 0) <= self._done:
                    self._last_of_room.pop(item.room.room_id, None)
            self._progress.set()
            self._progress = asyncio.Event()
            if notified:
                self.on_notified(notified)

    async def _handle(self, batch: list[_Queued]) -> set[str]:
        rules = await self._load_rules({u for item in batch for u in item.users})
        rows: list[store.PushAction] = []
        redacted: list[tuple[str, int, tuple[str, ...]]] = []
        left: list[tuple[str, str]] = []
        for item in batch:
            event = item.event
            if event.type == "m.room.redaction":
                target = event.pdu.get("redacts") or event.pdu.get("content", {}).get("redacts")
                found = await self.rooms.get_event(target) if isinstance(target, str) else None
                if found is not None and found.redacted_by is not None:
                    local = self._local_members(item.room).local_joined
                    redacted.append((found.room_id, found.stream_ordering, local))
            elif event.type == "m.room.member" and event.state_key is not None:
                membership = event.pdu.get("content", {}).get("membership")
                if event.state_key.endswith(self._suffix) and membership in ("leave", "ban"):
                    left.append((item.room.room_id, event.state_key))
            if item.users:
                rows.extend(await self._evaluate(item, rules))
        if redacted or left:
            async with self.db.write() as conn:
                for room_id, position, users in redacted:
                    await store.delete_for_event(conn, room_id, position, users)
                for room_id, user_id in left:
                    await store.delete_for_members(conn, room_id, [user_id])
        # On SQLite (one writer) several short transactions rather than one long one: a
        # send waits for at most one of them.  /sync waits for the whole batch anyway.
        step = ROWS_PER_SQLITE_TRANSACTION if self.db.is_sqlite else max(len(rows), 1)
        for start in range(0, len(rows), step):
            async with self.db.write() as conn:
                await store.insert_actions(conn, rows[start : start + step])
        return {r.user_id for r in rows}

    async def _evaluate(
        self, item: _Queued, all_rules: dict[str, RuleSet]
    ) -> list[store.PushAction]:
        event, room = item.event, item.room
        power, sender_level = await self._power(room, event.sender)
        facts = EventFacts.of(
            event.pdu,
            member_count=item.member_count,
            sender_level=sender_level,
            power_levels=power,
        )
        rules = {u: all_rules[u] for u in item.users}
        named = [u for u, r in rules.items() if r.needs_display_name]
        names = await self._display_names(room, event, named)
        rows: list[store.PushAction] = []
        for user_id, ruleset in rules.items():
            outcome = facts.run(ruleset, user_id, names.get(user_id))
            if outcome is None or not outcome.notify:
                continue
            rows.append(
                store.PushAction(
                    room_id=room.room_id,
                    user_id=user_id,
                    stream_ordering=event.stream_ordering,
                    highlight=outcome.highlight,
                    actions=None if outcome.actions == ("notify",) else list(outcome.actions),
                )
            )
        return rows

    async def _power(
        self, room: RoomCache, sender: str
    ) -> tuple[dict[str, Any] | None, int | float | None]:
        keys = [("m.room.create", ""), ("m.room.power_levels", "")]
        found = await self.rooms.get_events(room.state[k] for k in keys if k in room.state)
        auth_state = {k: found[room.state[k]].pdu for k in keys if room.state.get(k) in found}
        power = auth_state.get(("m.room.power_levels", ""), {}).get("content")
        try:
            level = user_power_level(sender, auth_state, room.version)
        except FederationError:  # no create event, or a malformed level: no permission
            level = None
        return (power if isinstance(power, dict) else None), level

    async def _display_names(
        self, room: RoomCache, event: StoredEvent, users: list[str]
    ) -> dict[str, str]:
        if not users:
            return {}
        ids = {u: room.state.get(("m.room.member", u)) for u in users}
        found = await self.rooms.get_events(e for e in ids.values() if e)
        names: dict[str, str] = {}
        for user_id, event_id in ids.items():
            member = found.get(event_id) if event_id else None
            name = member.pdu.get("content", {}).get("displayname") if member else None
            if not name and event.type == "m.room.member" and event.state_key == user_id:
                name = event.pdu.get("content", {}).get("displayname")
            if isinstance(name, str) and name:
                names[user_id] = name
        return names

    async def _load_rules(self, users: set[str]) -> dict[str, RuleSet]:
        """Every user's compiled rules; those not cached are loaded and compiled."""
        found = {u: self._rules[u] for u in users if u in self._rules}
        missing = [u for u in users if u not in found]
        if not missing:
            return found
        self._changed.clear()
        async with self.db.read() as conn:
            stored = await store.push_rules_of(conn, missing)
        if len(self._rules) + len(missing) > MAX_CACHED_USERS:
            self._rules.clear()
            self._by_json.clear()
        for user_id in missing:
            raw = stored.get(user_id)
            if raw is None:
                ruleset = self._default
            elif raw in self._by_json:
                ruleset = self._by_json[raw]
            else:
                ruleset = self._by_json[raw] = compile_rules(evaluation_order(json.loads(raw)))
            found[user_id] = ruleset
            if user_id not in self._changed:  # a change during the read: load again next time
                self._rules[user_id] = ruleset
        return found
