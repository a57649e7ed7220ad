"""Cross-check of federation.state against Synapse's own state resolution (v2 and v2.1).

Rooms shared with Synapse must resolve to the same state on both servers.  Hypothesis
builds rooms of versions 10, 11 and 12 with hashed event IDs, forks them into two or
three branches of random power struggles (power levels, bans, kicks, joins, leaves, join
rules, topics), optionally marks some branch events as rejected, and compares
:func:`federation.state.resolve` with ``synapse.state.v2.resolve_events_with_store`` run
by the Synapse oracle (tests/oracle), in both of the oracle's modes: ``event_map`` (all
events in flight: Synapse's in-memory auth difference and conflicted subgraph) and
``store`` (the oracle's event store).
"""

from __future__ import annotations

import os
import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from federation.state import resolve
from tests.federation.test_state_scenarios import (
    ACTION,
    ACTORS,
    ALL_VERSIONS,
    CHARLIE,
    Room,
    _apply,
    bootstrap,
)
from tests.oracle.client import SynapseOracle

pytestmark = pytest.mark.oracle

EXAMPLES = int(os.environ.get("KAIRAN_ORACLE_EXAMPLES", "150"))
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

StateMap = dict[tuple[str, str], str]


def _as_rows(state: StateMap) -> list[list[str]]:
    return sorted([t, sk, eid] for (t, sk), eid in state.items())


@SETTINGS
@given(
    version=st.sampled_from(ALL_VERSIONS),
    common=st.lists(ACTION, max_size=4),
    sides=st.lists(st.lists(ACTION, min_size=1, max_size=7), min_size=2, max_size=3),
    reject_seed=st.one_of(st.none(), st.integers(0, 2**16)),
    mode=st.sampled_from(["event_map", "store"]),
)
def test_resolution_matches_synapse(
    synapse_oracle: SynapseOracle,
    version: str,
    common: list[tuple[str, str, str, int]],
    sides: list[list[tuple[str, str, str, int]]],
    reject_seed: int | None,
    mode: str,
) -> None:
    room, s0 = bootstrap(version, real_ids=True)
    for action in common:
        _apply(room, s0, action)
    before = set(room.events)
    state_sets: list[StateMap] = []
    for actions in sides:
        s = dict(s0)
        for action in actions:
            _apply(room, s, action)
        state_sets.append(s)
    rejected: set[str] = set()
    if reject_seed is not None:
        forked = sorted(set(room.events) - before)
        rejected = set(random.Random(reject_seed).sample(forked, k=min(2, len(forked))))

    _compare(synapse_oracle, room, state_sets, rejected, mode)


def _compare(
    oracle: SynapseOracle,
    room: Room,
    state_sets: list[StateMap],
    rejected: set[str],
    mode: str,
) -> StateMap:
    ours = resolve(room.version, state_sets, room.events, rejected=rejected)
    request: dict[str, Any] = {
        "room_version": room.version,
        "state_sets": [_as_rows(s) for s in state_sets],
        "events": list(room.events.values()),
        "rejected": sorted(rejected),
        "mode": mode,
    }
    answer = oracle.request("resolve", **request)
    assert answer["ok"], answer.get("error")
    theirs = {(t, sk): eid for t, sk, eid in answer["result"]}
    if ours != theirs:
        diff = {
            k: (ours.get(k), theirs.get(k))
            for k in ours.keys() | theirs.keys()
            if ours.get(k) != theirs.get(k)
        }
        pytest.fail(f"state differs from Synapse's (ours, synapse): {diff}")
    return ours


@SETTINGS
@given(
    version=st.sampled_from(ALL_VERSIONS),
    rounds=st.lists(
        st.lists(st.lists(ACTION, min_size=1, max_size=5), min_size=2, max_size=3),
        min_size=2,
        max_size=4,
    ),
    extra_creator=st.booleans(),
)
def test_repeated_forks_and_merges_match_synapse(
    synapse_oracle: SynapseOracle,
    version: str,
    rounds: list[list[list[tuple[str, str, str, int]]]],
    extra_creator: bool,
) -> None:
    """A DAG of several fork-and-merge rounds: each merge is resolved by both servers and
    the next round forks from the merged state (so auth chains run through earlier
    forks).  In room 12 charlie may be an additional creator."""
    creators = (CHARLIE,) if extra_creator and version == "12" else ()
    room, merged = bootstrap(version, real_ids=True, additional_creators=creators)
    for i, sides in enumerate(rounds):
        state_sets = []
        for actions in sides:
            s = dict(merged)
            for action in actions:
                _apply(room, s, action)
            state_sets.append(s)
        merged = _compare(
            synapse_oracle, room, state_sets, set(), "event_map" if i % 2 else "store"
        )


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_large_room_fork_matches_synapse(synapse_oracle: SynapseOracle, version: str) -> None:
    """A room of 1,500 members (hashed IDs) forked by 60 random power struggles, with
    members leaving, being banned and rejoining on both sides: the unconflicted-state fast
    path and the auth difference must agree with Synapse at scale too."""
    rng = random.Random(int(version))
    room, s0 = bootstrap(version, real_ids=True)
    crowd = [f"@m{i}:crowd.example" for i in range(1500)]
    for user in crowd:
        room.join(s0, user)
    sides: list[StateMap] = [dict(s0), dict(s0)]
    kinds = ["topic", "pl", "ban", "kick", "leave", "jr", "name", "invite", "pl2", "join"]
    actors = [*ACTORS, *crowd[:5]]
    for step in range(60):
        side = sides[step % 2]
        kind = rng.choice(kinds)
        actor = rng.choice(actors)
        target = rng.choice(crowd) if kind in ("ban", "kick", "invite") else rng.choice(actors)
        _apply(room, side, (kind, actor, target, rng.randint(0, 5)))
    for mode in ("event_map", "store"):
        _compare(synapse_oracle, room, sides, set(), mode)
