"""Push actions at persist time: whom each new event notifies, like Synapse's
``event_push_actions``.

:class:`PushActions` is a hook of :class:`RoomService` (local events, grouped or not)
and of the federation receive path: :meth:`PushActions.prepare` evaluates each local
joined member's push rules for new events (never for their own events), and what it
returns writes one row per notified user in the transaction that stores the events, as
Synapse writes its push actions with the event.  So the counts an event changes are
committed with it (a /sync that sees the event sees its counts), a crash cannot keep the
event and lose its counts, and no extra commit competes with sends.  (Group commit
prepares a group while the group before it is being written, so the evaluation overlaps
the database's work.)  After the commit, :meth:`after_commit` (a listener)
wakes the pushers of the users notified.  Read receipts delete the rows up to them
(:meth:`mark_read`), redactions the rows of the redacted event, leaving a room the user's
rows in it.

Compiled rules are cached per user (users who never changed their rules share one rule
set) and dropped when the user changes a rule; the local members of a room are cached
until its state changes.  Events that only rebuild state (backfill, outliers, rejected or
soft-failed events) notify no one.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from federation.auth.power import user_power_level
from federation.errors import FederationError
from homeserver.push.evaluator import EventFacts, RuleSet, compile_rules
from homeserver.push.ports import IgnoreLists, RoomReads
from homeserver.push.rules import evaluation_order
from homeserver.rooms.cache import RoomCache
from homeserver.rooms.hooks import HookWrite
from homeserver.rooms.ignored import hides, invited_by
from homeserver.storage import events as event_store
from homeserver.storage import push as store
from homeserver.storage.database import Database
from homeserver.storage.events import StoredEvent

log = logging.getLogger(__name__)

MAX_CACHED_USERS = 100_000
#: Notified users kept for events whose commit has not been heard of (a rolled-back
#: transaction leaves its entries behind; they are dropped beyond this).
MAX_PENDING_EVENTS = 10_000


@dataclass(frozen=True)
class _Item:
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


def _without_ignorers(item: _Item, lists: dict[str, frozenset[str]]) -> _Item:
    event = item.event
    users = tuple(
        u for u in item.users if not (hides(event, lists[u]) or invited_by(event, u, lists[u]))
    )
    return item if len(users) == len(item.users) else dataclasses.replace(item, users=users)


class PushActions:
    def __init__(
        self,
        db: Database,
        rooms: RoomReads,
        server_name: str,
        *,
        ignored: IgnoreLists,
        on_notified: Callable[[set[str]], None],
    ) -> None:
        self.db = db
        self.rooms = rooms
        self._suffix = ":" + server_name
        self._default = compile_rules(evaluation_order(None))
        self._rules: dict[str, RuleSet] = {}
        self._by_json: dict[str, RuleSet] = {}
        #: Users whose rules changed while their rules were being loaded (not cached then).
        self._changed: set[str] = set()
        self._members: dict[str, _Members] = {}
        #: room ID -> (state group, user ID -> display name or None)
        self._names: dict[str, tuple[int | None, dict[str, str | None]]] = {}
        #: event ID -> users it notified, until the event's commit is heard of.
        self._notified: dict[str, set[str]] = {}
        #: Called with the users who got new notifications (the pusher pool).
        self.on_notified = on_notified
        #: Users' ignore lists: an event notifies no one who ignores its sender (but state
        #: events other than an invite of them).
        self.ignored = ignored
        #: Milliseconds spent evaluating and storing, and events handled (for measuring).
        self.busy_ms = 0.0
        self.events_done = 0

    # ------------------------------------------------------------- hooks

    async def prepare(self, room: RoomCache, events: Sequence[StoredEvent]) -> HookWrite | None:
        """Evaluate the push rules for ``events`` (before or inside the transaction that
        stores them); what it returns writes the actions in that transaction."""
        items = [item for event in events if (item := self._item(room, event)) is not None]
        if not items:
            return None
        started = time.perf_counter()
        lists = await self.ignored.of_many({u for item in items for u in item.users})
        if any(lists.values()):
            items = [_without_ignorers(item, lists) for item in items]
        rules = await self._load_rules({u for item in items for u in item.users})
        rows: list[store.ActionRow] = []
        notified: dict[str, set[str]] = {}
        for item in items:
            if item.users:
                found = await self._evaluate(item, rules)
                rows.extend(found)
                if found:
                    notified[item.event.event_id] = {row[0] for row in found}
        self.busy_ms += (time.perf_counter() - started) * 1000

        def written() -> None:
            self.events_done += len(items)
            if len(self._notified) > MAX_PENDING_EVENTS:
                self._notified.clear()
            self._notified.update(notified)

        if any(self._removes(item.event) for item in items):
            # Deletions first (they need reads in the transaction), then the new rows.
            async def run(conn: Any) -> None:
                await self._forget_removed(conn, items)
                await store.insert_actions(conn, rows)

            return HookWrite(run=run, written=written)
        return HookWrite(statements=[store.action_statement(rows)], written=written)

    def after_commit(self, room: RoomCache, event: StoredEvent) -> None:
        """RoomService listener (after the commit): wake the notified users' pushers."""
        users = self._notified.pop(event.event_id, None)
        if users:
            self.on_notified(users)

    def _item(self, room: RoomCache, event: StoredEvent) -> _Item | None:
        if event.stream_ordering <= 0 or event.outlier or event.rejected_reason:
            return None
        if event.soft_failed:
            return None
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
        return _Item(room, event, tuple(users), members.joined_count)

    def rules_changed(self, user_id: str) -> None:
        self._rules.pop(user_id, None)
        self._changed.add(user_id)

    async def mark_read(
        self,
        conn: Any,
        room_id: str,
        user_id: str,
        stream_ordering: int,
        thread_id: str | None = None,
    ) -> None:
        """A read receipt (in the transaction that writes it): the notifications up to
        its event are read (moved out of the unread ones, kept a while for
        ``/notifications``), in its thread if it is a threaded receipt, else in all."""
        await store.delete_read(
            conn, room_id, user_id, stream_ordering, thread_id, read_ts=int(time.time() * 1000)
        )

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

    # ------------------------------------------------------------- evaluation

    def _removes(self, event: StoredEvent) -> bool:
        """Whether the event removes notifications (a redaction, a local member leaving)."""
        if event.type == "m.room.redaction":
            return True
        return (
            event.type == "m.room.member"
            and event.state_key is not None
            and event.state_key.endswith(self._suffix)
            and event.pdu.get("content", {}).get("membership") in ("leave", "ban")
        )

    async def _forget_removed(self, conn: Any, items: list[_Item]) -> None:
        """Delete the actions of redacted events and of members who left or were banned."""
        for item in items:
            event = item.event
            if not self._removes(event):
                continue
            if event.type != "m.room.redaction":  # a local member who left or was banned
                await store.delete_for_members(conn, item.room.room_id, [str(event.state_key)])
                continue
            target = event.pdu.get("redacts") or event.pdu.get("content", {}).get("redacts")
            # Read in this transaction, not through the event cache: a cache miss would
            # cache the target as it was before this transaction redacts it.
            found = (
                (await event_store.get_events(conn, [target])).get(target)
                if isinstance(target, str)
                else None
            )
            if found is not None and found.room_id == item.room.room_id:
                local = self._local_members(item.room).local_joined
                await store.delete_for_event(conn, found.room_id, found.stream_ordering, local)

    async def _evaluate(self, item: _Item, all_rules: dict[str, RuleSet]) -> list[store.ActionRow]:
        event, room = item.event, item.room
        power, sender_level = await self._power(room, event.sender)
        facts = EventFacts.of(
            event.pdu,
            member_count=item.member_count,
            sender_level=sender_level,
            power_levels=power,
        )
        # Users sharing a rule set (most users never change theirs) are evaluated together.
        by_rules: dict[RuleSet, list[str]] = {}
        for user_id in item.users:
            by_rules.setdefault(all_rules[user_id], []).append(user_id)
        named = [u for r, users in by_rules.items() if r.needs_display_name for u in users]
        names = await self._display_names(room, event, named)
        rows: list[store.ActionRow] = []
        room_id, position = room.room_id, event.stream_ordering
        thread = await self._thread_of(event)
        stored: dict[int, str | None] = {}  # id of an outcome -> its actions as stored
        for ruleset, users in by_rules.items():
            for user_id, outcome in facts.run_many(ruleset, users, names).items():
                if not outcome.notify:
                    continue
                key = id(outcome)
                if key not in stored:
                    stored[key] = store.stored_actions(outcome.actions)
                rows.append((user_id, room_id, position, outcome.highlight, stored[key], thread))
        return rows

    async def _thread_of(self, event: StoredEvent) -> str:
        """The thread an event is in, as Synapse tells it: the root of an ``m.thread``
        relation; for another relation (a reaction, an edit), the thread of the event it
        relates to; else (a reply included) the main timeline."""
        relation = event_store.relation_of(event.pdu)
        if relation is None:
            return store.MAIN
        rel_type, related = relation
        if rel_type == "m.thread":
            return related
        target = await self.rooms.get_event(related)
        if target is None or target.room_id != event.room_id:
            return store.MAIN
        parent = event_store.relation_of(target.pdu)
        return parent[1] if parent is not None and parent[0] == "m.thread" else store.MAIN

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
        """Members' display names, cached per room until its state changes (a member event
        may change its own member's name: those are read afresh)."""
        if not users:
            return {}
        if event.type == "m.room.member":
            return await self._read_display_names(room, event, users)
        cached = self._names.get(room.room_id)
        if cached is None or cached[0] != room.state_group:
            cached = self._names[room.room_id] = (room.state_group, {})
        missing = [u for u in users if u not in cached[1]]
        if missing:
            found = await self._read_display_names(room, event, missing)
            cached[1].update({u: found.get(u) for u in missing})
        return {u: name for u in users if (name := cached[1].get(u))}

    async def _read_display_names(
        self, room: RoomCache, event: StoredEvent, users: list[str]
    ) -> dict[str, str]:
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
