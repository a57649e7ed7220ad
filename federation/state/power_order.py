"""Step 1 continued: power events and the reverse topological power ordering.

*Power events* are ``m.room.power_levels``, ``m.room.join_rules`` and kicks/bans (a
``leave`` or ``ban`` membership whose sender is not its target).  Synapse also counts
``m.room.create`` as one; we do too, so that the (only theoretically possible) case of a
conflicted create event is ordered the same way on both servers.

The power events of the full conflicted set, together with the events of the full
conflicted set they reach by ``auth_events`` *through* events of the full conflicted set
(Synapse's reading of "the auth chain of P which also belong to the full conflicted
set"), are sorted with Kahn's algorithm: at each step the smallest available event by
(sender's power level descending, ``origin_server_ts``, event ID) comes next, an event
being available once all of its auth events in the set have been emitted.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable

from federation.auth import user_power_level
from federation.errors import FederationError, StateResolutionError

from ._events import CREATE_KEY, JOIN_RULES_KEY, MEMBER, POWER_LEVELS_KEY, EventGraph

__all__ = ["is_power_event", "reverse_topological_power_order", "sender_power_level"]


def is_power_event(graph: EventGraph, event_id: str) -> bool:
    key = graph.key(event_id)
    if key in (POWER_LEVELS_KEY, JOIN_RULES_KEY, CREATE_KEY):
        return True
    if key[0] == MEMBER:
        membership = graph.content(event_id).get("membership")
        if membership in ("leave", "ban"):
            return graph.sender(event_id) != key[1]
    return False


def sender_power_level(graph: EventGraph, event_id: str) -> int | float:
    """The sender's power level according to the event's own auth events.

    Room 12 creators have infinite power (the create event comes from the room ID);
    with no power levels event the creator has 100 and everyone else 0.
    """
    auth_state = graph.auth_events_by_key(event_id, frozenset())
    sender = graph.sender(event_id)
    try:
        return user_power_level(sender, auth_state, graph.room_version.identifier)
    except FederationError:
        # A malformed power levels event in the auth events: rank the sender lowest
        # rather than fail (it will not pass the auth checks either).
        return 0


def reverse_topological_power_order(
    graph: EventGraph, power_events: Iterable[str], full_conflicted_set: set[str]
) -> list[str]:
    """The power events plus what they reach inside the full conflicted set, sorted."""
    # edges[e] = auth events of e inside the sub-DAG; cited_by is the reverse.
    edges: dict[str, set[str]] = {}
    stack = list(power_events)
    while stack:
        eid = stack.pop()
        if eid in edges:
            continue
        parents = {a for a in graph.auth_ids(eid) if a in full_conflicted_set}
        edges[eid] = parents
        stack.extend(a for a in parents if a not in edges)

    cited_by: dict[str, list[str]] = {eid: [] for eid in edges}
    outstanding: dict[str, int] = {}
    for eid, parents in edges.items():
        outstanding[eid] = len(parents)
        for parent in parents:
            cited_by[parent].append(eid)

    def order_key(eid: str) -> tuple[int | float, int, str]:
        return (-sender_power_level(graph, eid), graph.origin_server_ts(eid), eid)

    heap = [(order_key(eid), eid) for eid, n in outstanding.items() if n == 0]
    heapq.heapify(heap)
    result: list[str] = []
    while heap:
        _, eid = heapq.heappop(heap)
        result.append(eid)
        for child in cited_by[eid]:
            outstanding[child] -= 1
            if outstanding[child] == 0:
                heapq.heappush(heap, (order_key(child), child))
    if len(result) != len(edges):
        stuck = sorted(eid for eid, n in outstanding.items() if n > 0)
        raise StateResolutionError(f"auth_events form a cycle among {stuck[:5]!r}")
    return result
