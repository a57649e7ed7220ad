"""Checks on receipt 4-6 and the state of received events, for a batch, under the room's lock.

Everything here works from what is already stored (or fetched beforehand, see
``fetch.py``) and from the events planned earlier in the same batch, and makes no request
to another server: the room's lock is held only for this and the one database write.
For each event it decides, in the spec's order: auth against its own auth events
(rejected), auth against the state before it (rejected), auth against the current state
(soft-failed), and for an accepted event the room's new current state: the state after it
when it follows every forward extremity, else the resolution of the states after every
forward extremity.  An event whose auth events, or the state before which, cannot be had is
dropped (not stored), as Synapse drops it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from federation import auth as engine_auth
from federation.errors import AuthError
from federation.identifiers import domain_of
from homeserver.common.errors import MatrixError
from homeserver.rooms.cache import RoomCache, StateKey
from homeserver.rooms.incoming import (
    GroupRef,
    IncomingBatch,
    IncomingEvent,
    NewGroup,
    state_changes,
)
from homeserver.rooms.policy import EventPolicy, ProposedEvent
from homeserver.rooms.resolver import StateResolver
from homeserver.rooms.service import RoomService

log = logging.getLogger(__name__)

StateMap = dict[StateKey, str]

#: Synapse's answer for an event pushed to us whose prev events its server will not give.
NOT_DIVULGING = "Your server isn't divulging details about prev_events referenced in this event."
NO_STATE = "We can't get valid state history."


@dataclass
class Candidate:
    """A verified event to process, with what was fetched for it beforehand."""

    event_id: str
    pdu: dict[str, Any]
    #: The state after each prev event that was missing, as its server gave it (events
    #: pulled with /get_missing_events or /backfill; never for events pushed to us).
    remote_states: dict[str, StateMap] = field(default_factory=dict)
    #: Pushed to us in a transaction (rather than pulled): missing prev events drop it.
    pushed: bool = True
    position: int | None = None


@dataclass
class _Planned:
    pdu: dict[str, Any]
    rejected: bool
    state_after: StateMap
    group: GroupRef


class BatchPlanner:
    """Plans one batch of received events of a room (the caller holds the room's lock)."""

    def __init__(
        self,
        rooms: RoomService,
        resolver: StateResolver,
        room: RoomCache,
        *,
        backfilled: bool = False,
        policy: EventPolicy | None = None,
    ) -> None:
        self.rooms = rooms
        self.policy = policy
        self.resolver = resolver
        self.room = room
        self.backfilled = backfilled
        self.planned: dict[str, _Planned] = {}
        self.current = dict(room.state)
        self.current_group: GroupRef = room.state_group
        self.extremities = list(room.extremities)
        self.depth = room.depth
        self.batch = IncomingBatch(room)
        self._stored: set[str] = set()

    async def _refused_by_policy(self, event_id: str, pdu: dict[str, Any]) -> bool:
        """Whether the features' event policy refuses a received event (it is then
        soft-failed, as Synapse soft-fails what its spam checker refuses)."""
        if self.policy is None:
            return False
        sender = str(pdu.get("sender", ""))
        origin = domain_of(sender) if ":" in sender else ""
        proposed = ProposedEvent.received(self.room.room_id, pdu, origin)
        try:
            await self.policy.check_event(proposed)
        except MatrixError as e:
            log.info("soft-failing %s: refused by the event policy: %s", event_id, e.message)
            return True
        return False

    async def skip_stored(self, event_ids: list[str]) -> None:
        """Note which of the batch's events are in the timeline already (one query)."""
        found = await self.rooms.get_events(event_ids)
        self._stored = {e for e, event in found.items() if not event.outlier}

    def result(self) -> IncomingBatch:
        if not self.backfilled:
            self.batch.extremities = self.extremities
            self.batch.depth = self.depth
        return self.batch

    async def add(self, cand: Candidate) -> str | None:
        """Plan one event; None when it is to be stored (or is stored already), else the
        reason it is dropped."""
        event_id, pdu = cand.event_id, cand.pdu
        if event_id in self.planned or event_id in self._stored:
            return None
        auth_ids = [a for a in pdu.get("auth_events", []) if isinstance(a, str)]
        auth = await self._lookup(auth_ids)
        missing = [a for a in auth_ids if a not in auth]
        if missing:
            return f"auth events could not be found: {', '.join(missing[:5])}"
        before = await self._state_before(cand)
        if before is None:
            return NOT_DIVULGING if cand.pushed else NO_STATE
        state_before, group_before = before
        rejected, redacts_any = await self._rejection(pdu, auth, state_before)
        soft_failed = (
            rejected is None and not self.backfilled and await self._soft_fails(event_id, pdu)
        )
        if rejected is None and not soft_failed and not self.backfilled:
            soft_failed = await self._refused_by_policy(event_id, pdu)
        state_after, group_after = state_before, group_before
        state_key = pdu.get("state_key")
        if rejected is None and isinstance(state_key, str):
            key = (pdu["type"], state_key)
            state_after = {**state_before, key: event_id}
            group_after = NewGroup(group_before, {key: event_id})
        if rejected:
            log.info("rejecting %s: %s", event_id, rejected)
        event = IncomingEvent(
            event_id, pdu, group=group_after, rejected_reason=rejected,
            soft_failed=soft_failed, backfilled=self.backfilled, position=cand.position,
            redacts_any=redacts_any,
        )  # fmt: skip
        if rejected is None and not soft_failed and not self.backfilled:
            await self._advance(event, state_after, group_after)
        self.planned[event_id] = _Planned(pdu, rejected is not None, state_after, group_after)
        self.batch.events.append(event)
        return None

    async def _rejection(
        self, pdu: dict[str, Any], auth: dict[str, _Seen], state_before: StateMap
    ) -> tuple[str | None, bool]:
        """Why the event is rejected (None when it is not): checked against its own auth
        events, then against the state before it.  And, for an accepted redaction, whether
        its sender may redact anyone's events."""
        room = self.room
        try:
            auth_state = engine_auth.build_auth_state(
                pdu,
                {k: v.pdu for k, v in auth.items()},
                room.version,
                create_event=await self._create_pdu(),
                rejected={k for k, v in auth.items() if v.rejected},
            )
            engine_auth.check(pdu, auth_state, room.version)
        except AuthError as e:
            return f"auth events: {e}", False
        redacts_any = False
        try:
            auth_before = await self._auth_state(pdu, state_before)
            engine_auth.check(pdu, auth_before, room.version)
            if pdu.get("type") == "m.room.redaction":
                redacts_any = engine_auth.user_power_level(
                    str(pdu["sender"]), auth_before, room.version
                ) >= engine_auth.named_level(auth_before, "redact")
        except AuthError as e:
            return f"state before: {e}", False
        return None, redacts_any

    async def _soft_fails(self, event_id: str, pdu: dict[str, Any]) -> bool:
        """Whether an accepted event fails the auth rules against the current state."""
        try:
            engine_auth.check(pdu, await self._auth_state(pdu, self.current), self.room.version)
        except AuthError as e:
            log.info("soft-failing %s: %s", event_id, e)
            return True
        return False

    async def _advance(self, event: IncomingEvent, state_after: StateMap, group: GroupRef) -> None:
        """The room's current state and forward extremities after an accepted event."""
        prevs = set(event.pdu.get("prev_events", []))
        others = [e for e in self.extremities if e not in prevs]
        if not others:
            new_current = state_after
        else:
            # As Synapse: the resolution of the states after every forward extremity, not
            # of the current state and the new one (state resolution is not associative:
            # servers receiving the same events in other orders would disagree).
            sets = [*await self._states_after(others), state_after]
            new_current = await self.resolver.resolve(
                self.room, sets, self._extra(sets, event.event_id, event.pdu)
            )
        changes = state_changes(self.current, new_current)
        if changes:
            self.current_group = (
                group if not others and group is not None else NewGroup(self.current_group, changes)
            )
            self.current = dict(new_current)
            event.current_changes = changes
            event.current_group = self.current_group
        self.extremities = [*others, event.event_id]
        depth = event.pdu.get("depth")
        self.depth = max(self.depth, depth if isinstance(depth, int) else 0)

    async def _known_states_after(
        self, event_ids: Iterable[str]
    ) -> dict[str, tuple[StateMap, GroupRef]]:
        """The state after each of these events this planner knows it of (planned earlier in
        the batch, or stored in the timeline), with its group."""
        wanted = list(dict.fromkeys(event_ids))
        known = await self.rooms.get_events(e for e in wanted if e not in self.planned)
        found: dict[str, tuple[StateMap, GroupRef]] = {}
        for event_id in wanted:
            planned = self.planned.get(event_id)
            event = known.get(event_id)
            if planned is not None:
                found[event_id] = (planned.state_after, planned.group)
            elif event is not None and not event.outlier and event.state_group is not None:
                async with self.rooms.db.read() as conn:
                    state = await self.rooms.state_store.get_state(conn, event.state_group)
                found[event_id] = (state, event.state_group)
        return found

    async def _states_after(self, event_ids: list[str]) -> list[StateMap]:
        """The state after each of these forward extremities; the current state stands in
        for the one whose state is not known (not expected: extremities are timeline
        events)."""
        found = await self._known_states_after(event_ids)
        for event_id in event_ids:
            if event_id not in found:
                log.warning("the state after forward extremity %s is unknown", event_id)
        return [found[e][0] if e in found else self.current for e in event_ids]

    async def _state_before(self, cand: Candidate) -> tuple[StateMap, GroupRef] | None:
        """The state before an event: the resolved states after its prev events (None when
        the state after one of them is unknown)."""
        prevs = list(
            dict.fromkeys(p for p in cand.pdu.get("prev_events", []) if isinstance(p, str))
        )
        found = await self._known_states_after(prevs)
        states: list[tuple[StateMap, GroupRef | str]] = []
        for prev in prevs:
            if prev in found:
                states.append(found[prev])
            elif prev in cand.remote_states:
                states.append((cand.remote_states[prev], "remote"))
            else:
                log.info("the state after %s (a prev event of %s) is unknown", prev, cand.event_id)
                return None
        if not states:
            return {}, None
        local = [(s, g) for s, g in states if g != "remote"]
        if len(states) == 1 and local:
            state, group = local[0]
            return state, group if not isinstance(group, str) else None
        sets = [s for s, _ in states]
        resolved = await self.resolver.resolve(
            self.room, sets, self._extra(sets, cand.event_id, cand.pdu)
        )
        base_state, base = local[0] if local else ({}, None)
        base_group = base if not isinstance(base, str) else None
        return resolved, NewGroup(base_group, state_changes(base_state, resolved))

    def _extra(
        self, sets: list[StateMap], event_id: str, pdu: dict[str, Any]
    ) -> dict[str, dict[str, Any]]:
        """Events of the state sets that are not stored yet: the event itself and those
        planned earlier in the batch."""
        extra = {event_id: pdu}
        frontier = [e for s in sets for e in s.values() if e in self.planned]
        frontier += [a for a in pdu.get("auth_events", []) if a in self.planned]
        while frontier:  # and the batch's events in their auth chains
            found = frontier.pop()
            if found not in extra:
                extra[found] = self.planned[found].pdu
                frontier += [a for a in extra[found].get("auth_events", []) if a in self.planned]
        return extra

    async def _lookup(self, event_ids: list[str]) -> dict[str, _Seen]:
        found: dict[str, _Seen] = {}
        for event_id in event_ids:
            planned = self.planned.get(event_id)
            if planned is not None:
                found[event_id] = _Seen(planned.pdu, planned.rejected)
        stored = await self.rooms.get_events(e for e in event_ids if e not in found)
        for event_id, event in stored.items():
            found[event_id] = _Seen(event.pdu, event.rejected_reason is not None)
        return found

    async def _create_pdu(self) -> dict[str, Any] | None:
        create_id = self.current.get(("m.room.create", ""))
        if create_id is None:
            return None
        found = await self._lookup([create_id])
        return found[create_id].pdu if create_id in found else None

    async def _auth_state(
        self, pdu: dict[str, Any], state: StateMap
    ) -> dict[StateKey, dict[str, Any]]:
        version = self.room.version
        keys = set(engine_auth.auth_types_for_event(pdu, version)) | {("m.room.create", "")}
        ids = {k: state[k] for k in keys if k in state}
        found = await self._lookup(list(ids.values()))
        return {k: found[v].pdu for k, v in ids.items() if v in found}


@dataclass(frozen=True)
class _Seen:
    pdu: dict[str, Any]
    rejected: bool
