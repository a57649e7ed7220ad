"""Matrix state resolution v2 (rooms 10 and 11) and v2.1 (room 12, MSC4297).

Pure code: no I/O.  One module per step of the algorithm:

* :mod:`.separate`     unconflicted state map and conflicted state set
* :mod:`.auth_chain`   auth chains and the auth difference
* :mod:`.subgraph`     the conflicted state subgraph (v2.1)
* :mod:`.power_order`  power events and the reverse topological power ordering
* :mod:`.mainline`     the mainline ordering
* :mod:`.iterative`    the iterative auth checks

Where the spec can be read two ways this follows Synapse, so that rooms shared with
Synapse converge: a state set's own events count as part of its full auth chain (auth
difference); the power events' auth chains are followed only through events of the full
conflicted set; ``m.room.create`` counts as a power event; room 12's implicit create
event is an auth event of every other event.

Event IDs are taken as given, never recomputed.  The auth rules of
:func:`federation.auth.check` compare two IDs they compute themselves (the room-12 room
ID and, for the creator's first join, the create event's ID); :mod:`.iterative` maps the
given IDs onto those, which is a no-op for real (hashed) event IDs.

Cost: one pass over the unconflicted state's event IDs and their first-level auth events
(to know which fork-side auth events every state set already reaches); everything else
is proportional to the conflicted events and their auth chains.
"""

from __future__ import annotations

from collections.abc import Mapping, Set

from federation.errors import StateResolutionError
from federation.room_versions import get as get_room_version

from ._events import PDU, POWER_LEVELS_KEY, EventGraph, StateKey
from .auth_chain import auth_difference
from .iterative import iterative_auth_checks
from .mainline import mainline_order
from .power_order import is_power_event, reverse_topological_power_order
from .separate import separate
from .subgraph import conflicted_subgraph

__all__ = ["StateResolutionError", "resolve"]


def resolve(
    room_version: str,
    state_sets: list[dict[StateKey, str]],
    events: Mapping[str, PDU],
    *,
    rejected: Set[str] = frozenset(),
) -> dict[StateKey, str]:
    """Resolve ``state_sets`` (each a map of ``(type, state_key)`` to event ID).

    ``events`` maps event ID to PDU and must hold every event of the state sets and
    every event reachable from them through ``auth_events``; event IDs are taken as
    given.  ``rejected`` optionally names events already rejected by their auth chain:
    they are never admitted into the state nor used as auth events.

    Raises :class:`StateResolutionError` for a missing or malformed event or state set,
    and :class:`~federation.errors.UnsupportedRoomVersion` for a room version other than
    10, 11 or 12.  Events failing the auth rules during resolution are dropped.
    """
    rv = get_room_version(room_version)
    if not isinstance(state_sets, (list, tuple)):
        raise StateResolutionError("state_sets must be a list of state maps")
    unconflicted, conflicted = separate(state_sets)
    if not conflicted:
        return unconflicted

    graph = EventGraph(events, rv)
    rejected_ids = frozenset(rejected)
    conflicted_events = _conflicted_events(graph, conflicted)
    full_conflicted = auth_difference(graph, state_sets, unconflicted, conflicted)
    full_conflicted |= conflicted_events
    if rv.uses_state_res_v2_1:
        full_conflicted |= conflicted_subgraph(graph, conflicted_events)
    _check_in_play(graph, full_conflicted)

    power_events = [eid for eid in full_conflicted if is_power_event(graph, eid)]
    sorted_power = reverse_topological_power_order(graph, power_events, full_conflicted)

    base_state: Mapping[StateKey, str] = {} if rv.uses_state_res_v2_1 else unconflicted
    resolved = iterative_auth_checks(graph, sorted_power, base_state, rejected_ids)

    picked = set(sorted_power)
    leftover = [eid for eid in full_conflicted if eid not in picked]
    ordered = mainline_order(graph, leftover, resolved.get(POWER_LEVELS_KEY))
    resolved = iterative_auth_checks(graph, ordered, resolved, rejected_ids)

    resolved.update(unconflicted)
    return resolved


def _conflicted_events(graph: EventGraph, conflicted: Mapping[StateKey, Set[str]]) -> set[str]:
    """The conflicted state set's events, each checked to be at its own state key."""
    conflicted_events: set[str] = set()
    for key, values in conflicted.items():
        for eid in values:
            if graph.key(eid) != key:
                raise StateResolutionError(
                    f"event {eid!r} is a {graph.key(eid)!r} event but a state set has it at {key!r}"
                )
            conflicted_events.add(eid)
    return conflicted_events


def _check_in_play(graph: EventGraph, full_conflicted: Set[str]) -> None:
    """Everything in play must be a well-formed state event of this room."""
    rv = graph.room_version
    room_ids: set[object] = set()
    for eid in full_conflicted:
        graph.key(eid)
        graph.sender(eid)
        graph.origin_server_ts(eid)
        graph.content(eid)
        pdu = graph.pdu(eid)
        if "room_id" in pdu or not rv.room_id_is_create_hash:
            room_ids.add(pdu.get("room_id"))
    if len(room_ids) > 1:
        raise StateResolutionError(f"events from more than one room: {sorted(map(repr, room_ids))}")
