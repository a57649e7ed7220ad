"""Step 3: the mainline ordering of the events not sorted in step 1.

The mainline of the resolved power levels event P0 is P0, the power levels event among
its auth events, that one's, and so on.  An event's mainline position is found by
following the power levels events among its auth events until one on the mainline is
reached; events closer to the start of the room come first, ties broken by
``origin_server_ts`` and then event ID.  As in Synapse, the walk looks up the event
itself first (the events sorted here are never power levels events, so this only
matters for malformed input), takes the *first* power levels event listed in
``auth_events``, and gives depth 0 (sorted first) to an event that never meets the
mainline.  Depths already found are memoised per power levels event.
"""

from __future__ import annotations

from collections.abc import Iterable

from federation.errors import StateResolutionError

from ._events import POWER_LEVELS_KEY, EventGraph

__all__ = ["mainline_order"]


def _power_levels_parent(graph: EventGraph, event_id: str) -> str | None:
    for aid in graph.auth_ids(event_id):
        if graph.key(aid) == POWER_LEVELS_KEY:
            return aid
    return None


def mainline_order(
    graph: EventGraph, event_ids: Iterable[str], power_levels_id: str | None
) -> list[str]:
    events = list(event_ids)
    if not events:
        return []
    mainline: list[str] = []
    seen: set[str] = set()
    current = power_levels_id
    while current is not None:
        if current in seen:
            raise StateResolutionError(f"power levels auth_events form a cycle at {current!r}")
        seen.add(current)
        mainline.append(current)
        current = _power_levels_parent(graph, current)
    # Earliest power levels event gets depth 1; events off the mainline get 0.
    depth: dict[str, int] = {eid: i for i, eid in enumerate(reversed(mainline), start=1)}

    def depth_of(event_id: str) -> int:
        path: list[str] = []
        current: str | None = event_id
        found = 0
        while current is not None:
            known = depth.get(current)
            if known is not None:
                found = known
                break
            if current in path:
                raise StateResolutionError(f"power levels auth_events form a cycle at {current!r}")
            path.append(current)
            current = _power_levels_parent(graph, current)
        for eid in path:
            depth[eid] = found
        return found

    keyed = [(depth_of(eid), graph.origin_server_ts(eid), eid) for eid in events]
    keyed.sort()
    return [eid for _, _, eid in keyed]
