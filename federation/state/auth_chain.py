"""Step 1: auth chains, the auth difference, and the full conflicted set's first part.

The *full auth chain* of a state set S_i is taken, as Synapse takes it, to be the events
of S_i **together with** all their auth chains (the spec's wording leaves the state
events themselves out; the two readings disagree now and then, and rooms shared with
Synapse must converge).  The auth difference is ``∪ C_i − ∩ C_i``.

Computing every C_i outright would walk the auth chains of the whole room state.  It
doesn't have to: let D be the closure of the *unconflicted* events.  D is a subset of
every C_i, so

    ∪ C_i − ∩ C_i  =  ∪ K_i − ∩ K_i − D,   with K_i = closure(conflicted events of S_i) − D,

and since every ancestor of an event in D is in D, the walk for each K_i can stop at the
first event of D it meets.  D itself is found by one pass over the unconflicted event
IDs with a shared ``seen`` set, so the events that every member of a large room cites
(create, power levels, join rules) are expanded once.  Nothing is sorted and no auth
rule is run on the unconflicted state.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from itertools import chain

from ._events import EventGraph, StateKey

__all__ = ["auth_difference", "closure", "unconflicted_closure"]


def closure(
    graph: EventGraph,
    roots: Iterable[str],
    seen: set[str] | None = None,
    stop: set[str] | frozenset[str] = frozenset(),
) -> set[str]:
    """The events reachable from ``roots`` through ``auth_events``, roots included.

    Events in ``stop`` are neither added nor expanded.  With ``seen``, events already in it
    are not expanded again, and the new events are added to it (the returned set is
    ``seen`` itself).
    """
    result: set[str] = set() if seen is None else seen
    stack = [r for r in roots if r not in result and r not in stop]
    result.update(stack)
    auth_ids = graph.auth_ids
    while stack:
        for aid in auth_ids(stack.pop()):
            if aid not in result and aid not in stop:
                result.add(aid)
                stack.append(aid)
    return result


def unconflicted_closure(graph: EventGraph, roots: Iterable[str]) -> set[str]:
    """:func:`closure` of the unconflicted events, tuned for rooms of many members.

    The first level (the auth events the unconflicted events cite: create, the power
    levels and join rules events, members' earlier memberships) is gathered by
    comprehensions over the PDUs, without validating or caching each event; from there
    on the (much smaller) rest is walked by :func:`closure`, which checks every event.
    Malformed input still ends in :class:`~federation.errors.StateResolutionError`: any
    oddity sends the first level back through the checked walk too.
    """
    root_ids = list(roots)
    seen = set(root_ids)
    events = graph.events
    try:
        pdus = [events[eid] for eid in seen]
        lists = [pdu["auth_events"] for pdu in pdus]
        if not all(type(ids) is list for ids in lists):
            return closure(graph, root_ids)
        cited = set(chain.from_iterable(lists))
        if graph.room_version.room_id_is_create_hash:
            room_ids = {pdu.get("room_id") for pdu in pdus}
            cited.update("$" + rid[1:] for rid in room_ids if isinstance(rid, str) and rid)
    except (KeyError, TypeError, AttributeError):
        return closure(graph, root_ids)
    if not all(type(eid) is str for eid in cited):
        return closure(graph, root_ids)
    return closure(graph, cited, seen=seen)


def auth_difference(
    graph: EventGraph,
    state_sets: Sequence[Mapping[StateKey, str]],
    unconflicted: Mapping[StateKey, str],
    conflicted: Mapping[StateKey, set[str]],
) -> set[str]:
    """``∪ C_i − ∩ C_i`` over the state sets' full auth chains (state events included)."""
    common = unconflicted_closure(graph, unconflicted.values())
    per_set: list[set[str]] = []
    for state_set in state_sets:
        roots = [state_set[k] for k in conflicted if k in state_set]
        per_set.append(closure(graph, roots, stop=common))
    if not per_set:
        return set()
    union = set().union(*per_set)
    intersection = per_set[0].intersection(*per_set[1:])
    return union - intersection
