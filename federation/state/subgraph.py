"""State res v2.1 (room 12, MSC4297): the conflicted state subgraph.

The subgraph is the union of every ``auth_events`` path that starts at one conflicted
event and ends at another, endpoints included.  An event lies on such a path exactly when
it is reachable from some conflicted event (in the closure of the conflicted set) and
some conflicted event is reachable from it.  So: take the closure A of the conflicted
events, then walk *backwards* (from an event to the events of A that cite it) from the
conflicted events, staying inside A.  Both walks are linear in the size of A, which is
the auth chains of the conflicted events only, never the whole room.
"""

from __future__ import annotations

from collections.abc import Iterable

from ._events import EventGraph
from .auth_chain import closure

__all__ = ["conflicted_subgraph"]


def conflicted_subgraph(graph: EventGraph, conflicted_events: Iterable[str]) -> set[str]:
    """The events on ``auth_events`` paths between conflicted events (endpoints included)."""
    targets = set(conflicted_events)
    reachable = closure(graph, targets)
    cited_by: dict[str, list[str]] = {}
    for eid in reachable:
        for aid in graph.auth_ids(eid):
            cited_by.setdefault(aid, []).append(eid)
    on_path = set(targets)
    stack = list(targets)
    while stack:
        for child in cited_by.get(stack.pop(), ()):
            if child not in on_path:
                on_path.add(child)
                stack.append(child)
    return on_path
