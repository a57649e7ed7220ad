"""The 13 state-resolution conformance cases from ruma (tests/data/ruma-state-res, MIT).

Two kinds of case (see the data's README.md):

* ``dag``: replay the DAG in ``prev_events`` order; the state before an event is the
  resolution of the states after its prev events; the state after a state event is the
  resolution of {before, before + event}, so the event only enters the state if it
  passes the auth checks of resolution.  The result is the resolution of the states
  after every leaf.  (We also check the README's shortcut: resolving every PDU at once,
  each as its own one-entry state map, gives the same answer.)
* ``state_maps``: resolve the given state maps, the PDUs being the event store.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from federation.state import resolve

DATA = Path(__file__).resolve().parent.parent / "data" / "ruma-state-res"
CASES: list[dict[str, Any]] = json.loads((DATA / "cases.json").read_text("utf-8"))["cases"]

StateMap = dict[tuple[str, str], str]


def _load_pdus(files: list[str]) -> list[dict[str, Any]]:
    pdus: list[dict[str, Any]] = []
    for name in files:
        pdus.extend(json.loads((DATA / name).read_text("utf-8")))
    return pdus


def _room_version(pdus: list[dict[str, Any]]) -> str:
    create = pdus[0]
    assert create["type"] == "m.room.create"
    return str(create["content"].get("room_version", "1"))


def _key(pdu: dict[str, Any]) -> tuple[str, str]:
    return (pdu["type"], pdu["state_key"])


def _expected(case: dict[str, Any]) -> StateMap:
    rows = json.loads((DATA / case["expected"]).read_text("utf-8"))
    return {(r["type"], r["state_key"]): r["event_id"] for r in rows}


def _replay_dag(version: str, pdus: list[dict[str, Any]]) -> StateMap:
    events = {p["event_id"]: p for p in pdus}
    # Kahn over prev_events, in file order among the ready events.
    waiting = {eid: len(p["prev_events"]) for eid, p in events.items()}
    children: dict[str, list[str]] = {eid: [] for eid in events}
    for eid, p in events.items():
        for prev in p["prev_events"]:
            children[prev].append(eid)
    ready = [eid for eid, n in waiting.items() if n == 0]
    after: dict[str, StateMap] = {}
    while ready:
        eid = ready.pop(0)
        pdu = events[eid]
        prevs = pdu["prev_events"]
        if not prevs:
            before: StateMap = {}
        elif len(prevs) == 1:
            before = after[prevs[0]]
        else:
            before = resolve(version, [after[p] for p in prevs], events)
        with_event = dict(before)
        with_event[_key(pdu)] = eid
        after[eid] = resolve(version, [before, with_event], events)
        for child in children[eid]:
            waiting[child] -= 1
            if waiting[child] == 0:
                ready.append(child)
    assert len(after) == len(events), "prev_events do not form a DAG"
    leaves = [eid for eid, kids in children.items() if not kids]
    return resolve(version, [after[leaf] for leaf in leaves], events)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_ruma_case(case: dict[str, Any]) -> None:
    pdus = _load_pdus(case["pdu_files"])
    version = _room_version(pdus)
    events = {p["event_id"]: p for p in pdus}
    if case["kind"] == "dag":
        got = _replay_dag(version, pdus)
    else:
        assert case["kind"] == "state_maps"
        state_sets: list[StateMap] = []
        for name in case["state_map_files"]:
            ids = json.loads((DATA / name).read_text("utf-8"))
            state_sets.append({_key(events[eid]): eid for eid in ids})
        got = resolve(version, state_sets, events)
    assert got == _expected(case)


@pytest.mark.parametrize(
    "case", [c for c in CASES if c["kind"] == "dag"], ids=lambda c: str(c["name"])
)
def test_ruma_dag_all_at_once(case: dict[str, Any]) -> None:
    """The README's shortcut: every PDU as its own one-entry state map."""
    pdus = _load_pdus(case["pdu_files"])
    version = _room_version(pdus)
    events = {p["event_id"]: p for p in pdus}
    got = resolve(version, [{_key(p): p["event_id"]} for p in pdus], events)
    assert got == _expected(case)


def test_all_thirteen_cases_present() -> None:
    assert len(CASES) == 13
    names = {c["name"] for c in CASES}
    assert {
        "msc4297_problem_a_state_res_v2_0",
        "msc4297_problem_a_state_res_v2_1",
        "msc4297_problem_b_state_res_v2_0",
        "msc4297_problem_b_state_res_v2_1",
    } <= names
