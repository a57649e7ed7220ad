"""State resolution v2 / v2.1 on hand-built graphs: the classic conflicts, the tie-breaks,
the Synapse readings of the spec, bad input, the benchmark room, and properties.

Rooms are built by :class:`Room`: every event gets the auth events that the auth events
selection picks from the state it is sent in (room 12: without the create event), and
synthetic event IDs that resolution takes as given.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from federation.auth import auth_types_for_event
from federation.errors import StateResolutionError, UnsupportedRoomVersion
from federation.events import compute_content_hash, compute_event_id, compute_room_id
from federation.room_versions import get as get_room_version
from federation.state import resolve
from federation.state._events import EventGraph
from federation.state.auth_chain import auth_difference
from federation.state.separate import separate
from interop.bench.stateres import build_large_room

StateKey = tuple[str, str]
StateMap = dict[StateKey, str]

ALL_VERSIONS = ["10", "11", "12"]

ALICE = "@alice:a.example"
BOB = "@bob:b.example"
CHARLIE = "@charlie:c.example"
DAVE = "@dave:d.example"
EVE = "@eve:e.example"
FRANK = "@frank:f.example"

PL: StateKey = ("m.room.power_levels", "")
JR: StateKey = ("m.room.join_rules", "")
TOPIC: StateKey = ("m.room.topic", "")
CREATE: StateKey = ("m.room.create", "")


def member(user: str) -> StateKey:
    return ("m.room.member", user)


class Room:
    """A room under construction; state maps are plain dicts the caller forks by copying."""

    def __init__(self, version: str, real_ids: bool = False) -> None:
        self.version = version
        self.rv = get_room_version(version)
        self.real_ids = real_ids
        self.creators: set[str] = set()
        self.events: dict[str, dict[str, Any]] = {}
        self.ts = 0
        self.create_id = "$create"
        self.room_id = "!create" if self.rv.room_id_is_create_hash else "!room:a.example"

    def send(
        self,
        state: StateMap,
        etype: str,
        sender: str,
        content: dict[str, Any],
        state_key: str = "",
        *,
        ts: int | None = None,
        eid: str | None = None,
    ) -> str:
        self.ts += 10
        event_id = eid or f"${len(self.events):03d}-{etype[7:]}-{sender[1:].split(':')[0]}"
        pdu: dict[str, Any] = {
            "event_id": event_id,
            "room_id": self.room_id,
            "type": etype,
            "state_key": state_key,
            "sender": sender,
            "content": content,
            "origin_server_ts": self.ts if ts is None else ts,
            "prev_events": [],
            "auth_events": [],
        }
        if etype == "m.room.create":
            pdu["prev_events"] = []
            if self.rv.room_id_is_create_hash:
                del pdu["room_id"]
        else:
            keys = sorted(auth_types_for_event(pdu, self.version))
            pdu["auth_events"] = [state[k] for k in keys if k in state]
        if self.real_ids:
            # Hashed event IDs, as Synapse computes them (for cross-checks).
            del pdu["event_id"]
            pdu["depth"] = len(self.events) + 1
            if etype == "m.room.create" and self.rv.room_id_is_create_hash:
                pdu.pop("room_id", None)
            pdu["hashes"] = {"sha256": compute_content_hash(pdu)}
            event_id = compute_event_id(pdu, self.version)
            if etype == "m.room.create":
                self.create_id = event_id
                if self.rv.room_id_is_create_hash:
                    self.room_id = compute_room_id(pdu)
        assert event_id not in self.events
        self.events[event_id] = pdu
        state[(etype, state_key)] = event_id
        return event_id

    def join(self, state: StateMap, user: str, **kw: Any) -> str:
        return self.send(state, "m.room.member", user, {"membership": "join"}, user, **kw)

    def membership(self, state: StateMap, sender: str, target: str, value: str, **kw: Any) -> str:
        return self.send(state, "m.room.member", sender, {"membership": value}, target, **kw)

    def power_levels(self, state: StateMap, sender: str, users: dict[str, int], **kw: Any) -> str:
        if not self.rv.creators_have_infinite_power:
            users = {ALICE: 100, **users}
        users = {u: level for u, level in users.items() if u not in self.creators}
        content = {"users": users, "state_default": 50, "ban": 50, "kick": 50, "invite": 0}
        return self.send(state, "m.room.power_levels", sender, content, **kw)

    def topic(self, state: StateMap, sender: str, text: str, **kw: Any) -> str:
        return self.send(state, "m.room.topic", sender, {"topic": text}, **kw)

    def resolve(self, *state_sets: StateMap, **kw: Any) -> StateMap:
        return resolve(self.version, list(state_sets), self.events, **kw)


def bootstrap(
    version: str, real_ids: bool = False, additional_creators: tuple[str, ...] = ()
) -> tuple[Room, StateMap]:
    """Alice creates a public room (admin or, in room 12, creator); bob and dave are
    moderators (50), charlie a plain member (or, in room 12, an additional creator)."""
    room = Room(version, real_ids)
    state: StateMap = {}
    content: dict[str, Any] = {"room_version": version}
    if room.rv.create_has_creator:
        content["creator"] = ALICE
    if additional_creators:
        content["additional_creators"] = list(additional_creators)
    room.creators = {ALICE, *additional_creators} if room.rv.creators_have_infinite_power else set()
    room.send(state, "m.room.create", ALICE, content, eid=None if real_ids else room.create_id)
    room.join(state, ALICE)
    room.power_levels(state, ALICE, {BOB: 50, DAVE: 50})
    room.send(state, "m.room.join_rules", ALICE, {"join_rule": "public"})
    room.topic(state, ALICE, "the start")
    for user in (BOB, CHARLIE, DAVE):
        room.join(state, user)
    return room, state


def fork(state: StateMap) -> tuple[StateMap, StateMap]:
    return dict(state), dict(state)


def both_orders(room: Room, a: StateMap, b: StateMap) -> StateMap:
    first = room.resolve(a, b)
    assert room.resolve(b, a) == first
    return first


# --- the classic conflicts ----------------------------------------------------------


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_ban_vs_power_levels(version: str) -> None:
    """Bob bans charlie while alice demotes bob: the demotion wins, the ban is dropped."""
    room, s0 = bootstrap(version)
    a, b = fork(s0)
    demote = room.power_levels(a, ALICE, {DAVE: 50})
    room.membership(b, BOB, CHARLIE, "ban")
    result = both_orders(room, a, b)
    assert result[PL] == demote
    assert result[member(CHARLIE)] == s0[member(CHARLIE)]


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_topic_vs_power_levels(version: str) -> None:
    """Bob's topic, sent while alice demotes him, is dropped: the old topic stays."""
    room, s0 = bootstrap(version)
    a, b = fork(s0)
    demote = room.power_levels(a, ALICE, {DAVE: 50})
    room.topic(b, BOB, "bob's topic")
    result = both_orders(room, a, b)
    assert result[PL] == demote
    assert result[TOPIC] == s0[TOPIC]


@pytest.mark.parametrize("version", ALL_VERSIONS)
@pytest.mark.parametrize("bob_first", [True, False])
def test_admin_vs_moderator_power_levels(version: str, bob_first: bool) -> None:
    """Alice (admin) demotes bob; bob (moderator) promotes charlie at the same time.
    The admin's change is ordered first whatever the timestamps, and bob's then fails."""
    room, s0 = bootstrap(version)
    a, b = fork(s0)
    demote = room.power_levels(a, ALICE, {DAVE: 50}, ts=2000 if bob_first else 1000)
    room.power_levels(b, BOB, {BOB: 50, DAVE: 50, CHARLIE: 50}, ts=1000 if bob_first else 2000)
    result = both_orders(room, a, b)
    assert result[PL] == demote


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_join_rules_vs_join(version: str) -> None:
    """Eve joins while alice makes the room invite-only: the join is dropped."""
    room, s0 = bootstrap(version)
    a, b = fork(s0)
    invite_only = room.send(a, "m.room.join_rules", ALICE, {"join_rule": "invite"})
    room.join(b, EVE)
    result = both_orders(room, a, b)
    assert result[JR] == invite_only
    assert member(EVE) not in result


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_concurrent_joins(version: str) -> None:
    room, s0 = bootstrap(version)
    a, b = fork(s0)
    eve = room.join(a, EVE)
    frank = room.join(b, FRANK)
    result = both_orders(room, a, b)
    assert result[member(EVE)] == eve
    assert result[member(FRANK)] == frank
    assert {k: v for k, v in result.items() if k not in (member(EVE), member(FRANK))} == s0


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_ban_vs_profile_change(version: str) -> None:
    """Bob bans charlie; on the other side charlie changes his display name.  The ban is a
    power event and is applied first; charlie's update then fails (he is banned)."""
    room, s0 = bootstrap(version)
    a, b = fork(s0)
    ban = room.membership(a, BOB, CHARLIE, "ban")
    room.send(b, "m.room.member", CHARLIE, {"membership": "join", "displayname": "C"}, CHARLIE)
    result = both_orders(room, a, b)
    assert result[member(CHARLIE)] == ban


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_kick_vs_rejoin(version: str) -> None:
    """Bob kicks charlie while charlie changes his display name: the kick is applied first,
    then charlie's join event is a rejoin, which a public room allows."""
    room, s0 = bootstrap(version)
    a, b = fork(s0)
    room.membership(a, BOB, CHARLIE, "leave")
    rejoin = room.send(
        b, "m.room.member", CHARLIE, {"membership": "join", "displayname": "C"}, CHARLIE
    )
    assert both_orders(room, a, b)[member(CHARLIE)] == rejoin


# --- orderings and tie-breaks -------------------------------------------------------


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_mainline_ordering_beats_timestamps(version: str) -> None:
    """A topic authorised by a later power levels event on the mainline is applied after
    one authorised by an earlier one, even though its timestamp is older."""
    room, s0 = bootstrap(version)
    a, b = fork(s0)
    room.power_levels(a, ALICE, {BOB: 50, DAVE: 50, CHARLIE: 10}, ts=5000)
    newer_pl_topic = room.topic(a, ALICE, "A", ts=6000)
    room.topic(b, ALICE, "B", ts=9000)  # cites the original power levels
    result = both_orders(room, a, b)
    assert result[TOPIC] == newer_pl_topic


@pytest.mark.parametrize("version", ALL_VERSIONS)
@pytest.mark.parametrize("a_later", [True, False])
def test_origin_server_ts_tiebreak(version: str, a_later: bool) -> None:
    """Same sender, same mainline position: the later topic is applied last and wins."""
    room, s0 = bootstrap(version)
    a, b = fork(s0)
    ta = room.topic(a, ALICE, "A", ts=2000 if a_later else 1000)
    tb = room.topic(b, ALICE, "B", ts=1000 if a_later else 2000)
    result = both_orders(room, a, b)
    assert result[TOPIC] == (ta if a_later else tb)


@pytest.mark.parametrize("version", ALL_VERSIONS)
@pytest.mark.parametrize("ids", [("$topic-x", "$topic-y"), ("$topic-y", "$topic-x")])
def test_event_id_tiebreak(version: str, ids: tuple[str, str]) -> None:
    """Same mainline position and timestamp: the greater event ID is applied last."""
    room, s0 = bootstrap(version)
    a, b = fork(s0)
    room.topic(a, ALICE, "A", ts=1000, eid=ids[0])
    room.topic(b, ALICE, "B", ts=1000, eid=ids[1])
    result = both_orders(room, a, b)
    assert result[TOPIC] == "$topic-y"


@pytest.mark.parametrize("version", ALL_VERSIONS)
@pytest.mark.parametrize("same_ts", [False, True])
def test_power_event_tiebreaks(version: str, same_ts: bool) -> None:
    """Two power levels changes by alice: the later (or, at equal times, the greater ID)
    is sorted last and wins."""
    room, s0 = bootstrap(version)
    a, b = fork(s0)
    room.power_levels(a, ALICE, {BOB: 50, DAVE: 50, CHARLIE: 10}, ts=3000, eid="$pl-b")
    room.power_levels(
        b, ALICE, {BOB: 50, DAVE: 50, CHARLIE: 20}, ts=3000 if same_ts else 2000, eid="$pl-c"
    )
    result = both_orders(room, a, b)
    assert result[PL] == ("$pl-c" if same_ts else "$pl-b")


@pytest.mark.parametrize("version", ALL_VERSIONS)
@pytest.mark.parametrize("bob_earlier", [True, False])
def test_sender_power_orders_power_events(version: str, bob_earlier: bool) -> None:
    """Join rules changes by alice (100 / creator) and bob (50): the more powerful sender's
    event is sorted first whatever the timestamps, so bob's, applied last, wins."""
    room, s0 = bootstrap(version)
    a, b = fork(s0)
    room.send(
        a, "m.room.join_rules", ALICE, {"join_rule": "invite"}, ts=5000 if bob_earlier else 1000
    )
    knock = room.send(
        b, "m.room.join_rules", BOB, {"join_rule": "knock"}, ts=1000 if bob_earlier else 5000
    )
    result = both_orders(room, a, b)
    assert result[JR] == knock


# --- rejected events ------------------------------------------------------------------


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_unauthorised_event_in_a_fork_is_dropped(version: str) -> None:
    """A state set holding a topic charlie had no power to send: it fails the checks."""
    room, s0 = bootstrap(version)
    a, b = fork(s0)
    room.topic(b, CHARLIE, "charlie's topic")
    room.topic(b, EVE, "eve is not even in the room")
    bob_topic = room.topic(a, BOB, "bob's topic")
    result = both_orders(room, a, b)
    assert result[TOPIC] == bob_topic


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_known_rejected_event_is_never_admitted(version: str) -> None:
    room, s0 = bootstrap(version)
    a, b = fork(s0)
    tb = room.topic(b, ALICE, "B")
    assert both_orders(room, a, b)[TOPIC] == tb
    assert room.resolve(a, b, rejected={tb})[TOPIC] == s0[TOPIC]


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_rejected_auth_event_is_not_used(version: str) -> None:
    """Eve's topic cites her join; with that join known rejected, the topic has no
    membership to lean on and is dropped."""
    room, s0 = bootstrap(version)
    a, b = fork(s0)
    join = room.join(b, EVE)
    room.power_levels(b, ALICE, {BOB: 50, DAVE: 50, EVE: 50})
    topic = room.topic(b, EVE, "eve's topic")
    assert both_orders(room, a, b)[TOPIC] == topic
    result = room.resolve(a, b, rejected={join})
    assert result[TOPIC] == s0[TOPIC]
    assert member(EVE) not in result


# --- the auth difference: a state set's own events count (Synapse) -----------------


def _brute_force_auth_difference(
    room: Room, state_sets: list[StateMap], synapse_reading: bool
) -> set[str]:
    graph = EventGraph(room.events, room.rv)

    def chain(eid: str) -> set[str]:
        seen: set[str] = set()
        stack = list(graph.auth_ids(eid))
        while stack:
            x = stack.pop()
            if x not in seen:
                seen.add(x)
                stack.extend(graph.auth_ids(x))
        return seen

    chains = []
    for s in state_sets:
        c: set[str] = set()
        for eid in s.values():
            c |= chain(eid)
            if synapse_reading:
                c.add(eid)
        chains.append(c)
    return set().union(*chains) - chains[0].intersection(*chains[1:])


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_auth_difference_counts_state_set_events(version: str) -> None:
    """Bob's join is unconflicted, but only side A's topic (by bob) cites it.  Read
    literally, the spec puts bob's join in the auth difference (it is in A's auth chains
    and in no auth chain of B's events); Synapse counts each state set's own events as
    part of its full auth chain, so bob's join is in both and not in the difference."""
    room, s0 = bootstrap(version)
    a, b = fork(s0)
    bob_topic = room.topic(a, BOB, "bob's topic")
    sets = [a, b]
    unconflicted, conflicted = separate(sets)
    graph = EventGraph(room.events, room.rv)
    got = auth_difference(graph, sets, unconflicted, conflicted)
    assert got == _brute_force_auth_difference(room, sets, synapse_reading=True)
    assert s0[member(BOB)] not in got
    assert s0[member(BOB)] in _brute_force_auth_difference(room, sets, synapse_reading=False)
    assert both_orders(room, a, b)[TOPIC] == bob_topic


# --- v2.1: the iterative auth checks start from an empty state -----------------------


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_v2_1_starts_from_empty_state(version: str) -> None:
    """Both state sets say dave is banned (unconflicted), but one holds a topic dave sent
    while still joined (its auth events show him joined).  State res v2.0 checks the
    topic on top of the unconflicted state, sees the ban and drops it; v2.1 starts from
    an empty state, so the topic is checked against its own auth events and kept."""
    room, s0 = bootstrap(version)
    a, b = fork(s0)
    dave_topic = room.topic(a, DAVE, "dave's topic", ts=9000)
    ban = room.membership(b, ALICE, DAVE, "ban")
    a[member(DAVE)] = ban
    result = both_orders(room, a, b)
    assert result[member(DAVE)] == ban
    expected = dave_topic if get_room_version(version).uses_state_res_v2_1 else s0[TOPIC]
    assert result[TOPIC] == expected


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_v2_1_conflicted_subgraph_is_replayed(version: str) -> None:
    """Power levels PL1 -> alice's profile change M -> PL2: M is unconflicted, yet it
    lies between the two conflicted power levels events.  In v2.1 it joins the full
    conflicted set (and is replayed); the result is the same, the later PL."""
    room, s0 = bootstrap(version)
    a = dict(s0)
    pl1 = room.power_levels(a, ALICE, {BOB: 50, DAVE: 50, CHARLIE: 1})
    b = dict(a)
    room.send(a, "m.room.member", ALICE, {"membership": "join", "displayname": "A"}, ALICE)
    b[member(ALICE)] = a[member(ALICE)]
    pl2 = room.power_levels(b, ALICE, {BOB: 50, DAVE: 50, CHARLIE: 2})
    from federation.state.subgraph import conflicted_subgraph

    graph = EventGraph(room.events, room.rv)
    assert conflicted_subgraph(graph, {pl1, pl2}) == {pl1, pl2, a[member(ALICE)]}
    assert both_orders(room, a, b)[PL] == pl2


# --- trivial inputs -------------------------------------------------------------------


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_trivial_inputs(version: str) -> None:
    room, s0 = bootstrap(version)
    assert resolve(version, [], room.events) == {}
    assert resolve(version, [s0], room.events) == s0
    assert resolve(version, [s0, dict(s0), dict(s0)], room.events) == s0
    # The unconflicted fast path does not even need the events.
    assert resolve(version, [s0, dict(s0)], {}) == s0


def test_three_state_sets() -> None:
    room, s0 = bootstrap("11")
    a, b = fork(s0)
    c = dict(s0)
    eve = room.join(a, EVE)
    frank = room.join(b, FRANK)
    ta = room.topic(c, ALICE, "C")
    for perm in itertools.permutations([a, b, c]):
        result = room.resolve(*perm)
        assert result[member(EVE)] == eve
        assert result[member(FRANK)] == frank
        assert result[TOPIC] == ta


# --- bad input ------------------------------------------------------------------------


def _conflict(version: str = "11") -> tuple[Room, StateMap, StateMap, str]:
    room, s0 = bootstrap(version)
    a, b = fork(s0)
    t = room.topic(b, ALICE, "B")
    return room, a, b, t


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_missing_state_event(version: str) -> None:
    room, a, b, t = _conflict(version)
    del room.events[t]
    with pytest.raises(StateResolutionError, match=t.replace("$", r"\$")):
        room.resolve(a, b)


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_missing_auth_event(version: str) -> None:
    room, a, b, _t = _conflict(version)
    pl = a[PL]
    room.events = {k: v for k, v in room.events.items() if k != pl}
    with pytest.raises(StateResolutionError, match=r"missing event '\$"):
        room.resolve(a, b)


def test_missing_room12_create_event() -> None:
    room, a, b, _t = _conflict("12")
    del room.events[room.create_id]
    with pytest.raises(StateResolutionError, match=r"missing event '\$create': the m.room.create"):
        room.resolve(a, b)


MALFORMATIONS: list[tuple[str, Any]] = [
    ("auth_events", "not a list"),
    ("auth_events", [1, 2]),
    ("type", None),
    ("state_key", 7),
    ("sender", ["@x:y"]),
    ("origin_server_ts", "1000"),
    ("origin_server_ts", True),
    ("content", "text"),
]


@pytest.mark.parametrize("version", ALL_VERSIONS)
@pytest.mark.parametrize(("field", "value"), MALFORMATIONS)
def test_malformed_conflicted_event(version: str, field: str, value: Any) -> None:
    room, a, b, t = _conflict(version)
    # Make it a power event so that every field is read.
    room.events[t]["type"] = "m.room.join_rules"
    room.events[t]["content"] = {"join_rule": "invite"}
    b[JR] = t
    del b[TOPIC]
    room.events[t][field] = value
    with pytest.raises(StateResolutionError):
        room.resolve(a, b)


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_malformed_pdu_and_state_sets(version: str) -> None:
    room, a, b, t = _conflict(version)
    events: dict[str, Any] = dict(room.events)
    events[t] = "not an object"
    with pytest.raises(StateResolutionError):
        resolve(version, [a, b], events)
    with pytest.raises(StateResolutionError):
        resolve(version, [a, "nope"], room.events)  # type: ignore[list-item]
    with pytest.raises(StateResolutionError):
        resolve(version, [a, {**b, ("m.room.topic",): t}], room.events)  # type: ignore[dict-item]
    with pytest.raises(StateResolutionError):
        resolve(version, [a, {**b, TOPIC: 5}], room.events)  # type: ignore[dict-item]
    with pytest.raises(StateResolutionError):
        resolve(version, [a, {**b, TOPIC: ["x"]}], room.events)  # type: ignore[dict-item]
    with pytest.raises(StateResolutionError):
        resolve(version, (a, b), "events")  # type: ignore[arg-type]
    with pytest.raises(StateResolutionError, match="at"):
        # A state set placing the event at the wrong key.
        resolve(version, [a, {**a, ("m.room.name", ""): t}], room.events)


@pytest.mark.parametrize("version", ALL_VERSIONS)
@pytest.mark.parametrize("value", [None, "not a list", [1, 2], ["$nowhere"], 5])
def test_malformed_unconflicted_event(version: str, value: Any) -> None:
    """The unconflicted events are read by a fast path; bad input still gets caught."""
    room, a, b, _t = _conflict(version)
    room.events[a[member(CHARLIE)]]["auth_events"] = value
    with pytest.raises(StateResolutionError):
        room.resolve(a, b)


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_missing_unconflicted_event(version: str) -> None:
    room, a, b, _t = _conflict(version)
    gone = a[member(DAVE)]
    del room.events[gone]
    with pytest.raises(StateResolutionError, match=gone.replace("$", r"\$")):
        room.resolve(a, b)


def test_unsupported_room_version() -> None:
    room, a, b, _t = _conflict("11")
    with pytest.raises(UnsupportedRoomVersion):
        resolve("9", [a, b], room.events)


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_auth_cycle(version: str) -> None:
    room, s0 = bootstrap(version)
    a, b = fork(s0)
    p1 = room.power_levels(a, ALICE, {BOB: 50, DAVE: 50, CHARLIE: 1})
    p2 = room.power_levels(b, ALICE, {BOB: 50, DAVE: 50, CHARLIE: 2})
    room.events[p1]["auth_events"].append(p2)
    room.events[p2]["auth_events"].append(p1)
    with pytest.raises(StateResolutionError, match="cycle"):
        room.resolve(a, b)


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_malformed_content_fails_auth_quietly(version: str) -> None:
    """A member event with no membership is not a resolution error: it fails auth."""
    room, s0 = bootstrap(version)
    a, b = fork(s0)
    room.send(b, "m.room.member", EVE, {"displayname": "no membership"}, EVE)
    room.send(a, "m.room.member", FRANK, {"membership": 42}, FRANK)
    result = both_orders(room, a, b)
    assert member(EVE) not in result and member(FRANK) not in result


def test_events_from_another_room() -> None:
    room, a, b, t = _conflict("11")
    room.events[t]["room_id"] = "!other:a.example"
    with pytest.raises(StateResolutionError, match="more than one room"):
        room.resolve(a, b)


# --- the benchmark room -----------------------------------------------------------------


def _expected_large_room(
    state_sets: list[StateMap], events: Mapping[str, dict[str, Any]]
) -> StateMap:
    """Side A wins; of side B only the self-joins and self-leaves survive."""
    a, b = state_sets
    expected = dict(a)
    for key, eid in b.items():
        pdu = events[eid]
        if (
            eid.startswith("$b-")
            and pdu["type"] == "m.room.member"
            and pdu["sender"] == pdu["state_key"]
        ):
            expected[key] = eid
    return expected


@pytest.mark.parametrize(("version", "members"), [("10", 500), ("11", 10_000), ("12", 10_000)])
def test_large_room_resolves_to_expected_state(version: str, members: int) -> None:
    state_sets, events = build_large_room(members=members, fork=100, room_version=version)
    a, b = state_sets
    assert sum(1 for k in a.keys() | b.keys() if a.get(k) != b.get(k)) > 50
    result = resolve(version, state_sets, events)
    assert result == _expected_large_room(state_sets, events)
    assert resolve(version, [b, a], events) == result
    joined = sum(
        1
        for k, v in result.items()
        if k[0] == "m.room.member" and events[v]["content"]["membership"] == "join"
    )
    assert joined > members - 60


# --- properties ---------------------------------------------------------------------------

ACTORS = [ALICE, BOB, CHARLIE, DAVE, EVE]
ACTION = st.tuples(
    st.sampled_from(["topic", "pl", "ban", "kick", "join", "leave", "jr", "name", "invite", "pl2"]),
    st.sampled_from(ACTORS),
    st.sampled_from(ACTORS),
    st.integers(min_value=0, max_value=5),
)


def _apply(room: Room, state: StateMap, action: tuple[str, str, str, int]) -> None:
    kind, actor, target, n = action
    if kind == "topic":
        room.topic(state, actor, f"t{n}", ts=1000 + n)
    elif kind == "name":
        room.send(state, "m.room.name", actor, {"name": f"n{n}"}, ts=1000 + n)
    elif kind == "pl":
        users = {u: 10 * n for u in (BOB, CHARLIE) if u != actor}
        room.power_levels(state, actor, {DAVE: 50, **users})
    elif kind == "pl2":
        # Raise the bar for topics and bans, or lower it.
        levels = {ALICE: 100, BOB: 50, DAVE: 10 * n}
        content: dict[str, Any] = {
            "users": {u: v for u, v in levels.items() if u not in room.creators},
            "users_default": n % 2,
            "events": {"m.room.topic": 10 * n},
            "ban": 25 * (n % 3),
            "state_default": 50,
        }
        room.send(state, "m.room.power_levels", actor, content)
    elif kind == "invite":
        room.membership(state, actor, target, "invite")
    elif kind == "ban":
        room.membership(state, actor, target, "ban")
    elif kind == "kick":
        room.membership(state, actor, target, "leave")
    elif kind == "join":
        room.join(state, actor, ts=1000 + n)
    elif kind == "leave":
        room.membership(state, actor, actor, "leave")
    else:
        room.send(
            state, "m.room.join_rules", actor, {"join_rule": ["public", "invite", "knock"][n % 3]}
        )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    version=st.sampled_from(ALL_VERSIONS),
    sides=st.lists(st.lists(ACTION, max_size=6), min_size=1, max_size=3),
    common=st.lists(ACTION, max_size=3),
)
def test_properties(
    version: str,
    sides: list[list[tuple[str, str, str, int]]],
    common: list[tuple[str, str, str, int]],
) -> None:
    room, s0 = bootstrap(version)
    for action in common:
        _apply(room, s0, action)
    state_sets = []
    for actions in sides:
        s = dict(s0)
        for action in actions:
            _apply(room, s, action)
        state_sets.append(s)
    result = room.resolve(*state_sets)
    # Independent of the order of the state sets.
    for perm in itertools.permutations(state_sets):
        assert room.resolve(*perm) == result
    # Resolving a single state set, or a result with itself, changes nothing.
    assert room.resolve(state_sets[0]) == state_sets[0]
    assert room.resolve(result, dict(result)) == result
    # Unconflicted state is kept; every value is an event of the right key.
    unconflicted, conflicted = separate(state_sets)
    assert all(result[k] == v for k, v in unconflicted.items())
    for key, eid in result.items():
        assert (room.events[eid]["type"], room.events[eid]["state_key"]) == key
    # The auth difference equals the brute-force (Synapse) definition.
    graph = EventGraph(room.events, room.rv)
    if conflicted:
        assert auth_difference(graph, state_sets, unconflicted, conflicted) == (
            _brute_force_auth_difference(room, state_sets, synapse_reading=True)
        )
