"""Benchmark: state resolution of a large room with a conflicting fork.

:func:`build_large_room` builds a public room of ``members`` joined users and two state
sets that share that history and then diverge by ``fork`` events, half on each side:

* side A, by the admin ``@alice``: a power levels change demoting the moderator
  ``@bob`` (and promoting ``@carol``), then topic and name changes and bans;
* side B, by the moderator ``@bob`` (still a moderator there): bans, kicks and topic
  changes, plus new users joining and existing users leaving of their own accord.

Resolution should let side A win every power struggle (bob's bans, kicks and topics
are dropped, because alice demoted him) while the self-joins and self-leaves of side B
survive.  Event IDs are synthetic (``$...``) and taken as given, as state resolution
takes them.

``python -m interop.bench.stateres`` prints the median timings.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from federation.room_versions import get as get_room_version
from federation.state import resolve

__all__ = ["build_large_room", "run"]

StateKey = tuple[str, str]
StateMap = dict[StateKey, str]

SERVER = "example.org"
ALICE = f"@alice:{SERVER}"
BOB = f"@bob:{SERVER}"
CAROL = f"@carol:{SERVER}"


def _user(i: int) -> str:
    return f"@user{i:05d}:{SERVER}"


class _Builder:
    def __init__(self, room_version: str) -> None:
        self.rv = get_room_version(room_version)
        self.version = room_version
        self.events: dict[str, dict[str, Any]] = {}
        self.create_id = "$bench-create"
        self.room_id = "!bench-create" if self.rv.room_id_is_create_hash else f"!bench:{SERVER}"
        self.ts = 1_700_000_000_000
        self.counter = 0

    def add(
        self,
        state: StateMap,
        etype: str,
        state_key: str,
        sender: str,
        content: dict[str, Any],
        auth_keys: list[StateKey],
        prev: list[str],
        label: str,
    ) -> str:
        self.counter += 1
        self.ts += 1
        event_id = f"${label}-{self.counter:06d}"
        auth = [state[k] for k in auth_keys if k in state]
        if not self.rv.room_id_is_create_hash:
            auth.insert(0, self.create_id)
        pdu: dict[str, Any] = {
            "event_id": event_id,
            "room_id": self.room_id,
            "type": etype,
            "state_key": state_key,
            "sender": sender,
            "content": content,
            "origin_server_ts": self.ts,
            "prev_events": prev,
            "auth_events": auth,
            "depth": self.counter,
        }
        self.events[event_id] = pdu
        state[(etype, state_key)] = event_id
        return event_id

    def member(
        self,
        state: StateMap,
        sender: str,
        target: str,
        membership: str,
        prev: list[str],
        label: str,
    ) -> str:
        keys: list[StateKey] = [("m.room.power_levels", ""), ("m.room.member", sender)]
        if target != sender:
            keys.append(("m.room.member", target))
        if membership == "join":
            keys.append(("m.room.join_rules", ""))
        return self.add(
            state, "m.room.member", target, sender, {"membership": membership}, keys, prev, label
        )

    def state_event(
        self,
        state: StateMap,
        etype: str,
        sender: str,
        content: dict[str, Any],
        prev: list[str],
        label: str,
    ) -> str:
        keys: list[StateKey] = [("m.room.power_levels", ""), ("m.room.member", sender)]
        return self.add(state, etype, "", sender, content, keys, prev, label)


def _power_levels(users: dict[str, int]) -> dict[str, Any]:
    return {
        "users": users,
        "users_default": 0,
        "events_default": 0,
        "state_default": 50,
        "ban": 50,
        "kick": 50,
        "redact": 50,
        "invite": 0,
        "events": {"m.room.power_levels": 100, "m.room.history_visibility": 100},
    }


def build_large_room(
    members: int = 10_000, fork: int = 100, room_version: str = "11"
) -> tuple[list[StateMap], dict[str, dict[str, Any]]]:
    """``([state_a, state_b], events)`` for a room of ``members`` joined users forked by
    ``fork`` conflicting events (half on each side); see the module docstring."""
    if members < 10:
        raise ValueError("the benchmark room needs at least 10 members")
    b = _Builder(room_version)
    state: StateMap = {}
    create_content: dict[str, Any] = {"room_version": room_version}
    if b.rv.create_has_creator:
        create_content["creator"] = ALICE
    b.counter += 1
    b.events[b.create_id] = {
        "event_id": b.create_id,
        "type": "m.room.create",
        "state_key": "",
        "sender": ALICE,
        "content": create_content,
        "origin_server_ts": b.ts,
        "prev_events": [],
        "auth_events": [],
        "depth": 1,
    }
    if not b.rv.room_id_is_create_hash:
        b.events[b.create_id]["room_id"] = b.room_id
    state[("m.room.create", "")] = b.create_id
    last = b.member(state, ALICE, ALICE, "join", [b.create_id], "join")
    users = {BOB: 50} if b.rv.creators_have_infinite_power else {ALICE: 100, BOB: 50}
    last = b.state_event(state, "m.room.power_levels", ALICE, _power_levels(users), [last], "pl")
    last = b.state_event(state, "m.room.join_rules", ALICE, {"join_rule": "public"}, [last], "jr")
    last = b.state_event(
        state, "m.room.history_visibility", ALICE, {"history_visibility": "shared"}, [last], "hv"
    )
    last = b.state_event(state, "m.room.name", ALICE, {"name": "Bench room"}, [last], "name")
    last = b.state_event(state, "m.room.topic", ALICE, {"topic": "the start"}, [last], "topic")
    for user in [BOB, CAROL, *(_user(i) for i in range(members - 3))]:
        last = b.member(state, user, user, "join", [last], "join")

    # The fork.  Targets: side A bans users from the front of the list, side B acts on
    # users from the back, so the two sides never touch the same member.
    side_a = dict(state)
    side_b = dict(state)
    last_a = last_b = last
    n_a = fork // 2
    n_b = fork - n_a
    new_users = members  # indices of users who join on side B

    a_users = (
        {BOB: 0, CAROL: 50}
        if b.rv.creators_have_infinite_power
        else {ALICE: 100, BOB: 0, CAROL: 50}
    )
    if n_a:
        last_a = b.state_event(
            side_a, "m.room.power_levels", ALICE, _power_levels(a_users), [last_a], "a-pl"
        )
    for i in range(1, n_a):
        step = i % 4
        if step == 0:
            last_a = b.state_event(
                side_a, "m.room.topic", ALICE, {"topic": f"A {i}"}, [last_a], "a-topic"
            )
        elif step == 2:
            last_a = b.state_event(
                side_a, "m.room.name", ALICE, {"name": f"A {i}"}, [last_a], "a-name"
            )
        else:
            last_a = b.member(side_a, ALICE, _user(i), "ban", [last_a], "a-ban")

    back = members - 4
    for i in range(n_b):
        step = i % 5
        if step == 0:
            last_b = b.member(side_b, BOB, _user(back), "ban", [last_b], "b-ban")
            back -= 1
        elif step == 1:
            last_b = b.state_event(
                side_b, "m.room.topic", BOB, {"topic": f"B {i}"}, [last_b], "b-topic"
            )
        elif step == 2:
            user = _user(new_users)
            new_users += 1
            last_b = b.member(side_b, user, user, "join", [last_b], "b-join")
        elif step == 3:
            user = _user(back)
            back -= 1
            last_b = b.member(side_b, user, user, "leave", [last_b], "b-leave")
        else:
            last_b = b.member(side_b, BOB, _user(back), "leave", [last_b], "b-kick")
            back -= 1
    return [side_a, side_b], b.events


def _median_ms(room_version: str, members: int, fork: int, repeat: int) -> float:
    state_sets, events = build_large_room(members, fork, room_version)
    timings: list[float] = []
    for _ in range(repeat):
        start = time.perf_counter()
        resolve(room_version, state_sets, events)
        timings.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(timings)


def run(repeat: int = 5, members: int = 10_000, fork: int = 100) -> dict[str, float]:
    """Median milliseconds to resolve the large room: ``{"v11_ms": ..., "v12_ms": ...}``."""
    return {
        "v11_ms": _median_ms("11", members, fork, repeat),
        "v12_ms": _median_ms("12", members, fork, repeat),
    }


if __name__ == "__main__":
    for name, value in run().items():
        print(f"{name}: {value:.1f}")
