"""Step 0: split the state sets into the unconflicted state map and the conflicted state.

A key is unconflicted when every state set maps it to the same event.  A key missing
from some state set is conflicted (the spec's "present in every S_i"; Synapse agrees),
and its conflicted events are the values of the sets that have it.

The comparison runs over ``dict.items()`` views, so the work per unconflicted key is a
hash and a comparison done in C; nothing here sorts the state or looks at events.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet

from federation.errors import StateResolutionError

from ._events import StateKey

__all__ = ["separate"]


def _check_state_set(index: int, state_set: object) -> Mapping[StateKey, str]:
    if not isinstance(state_set, Mapping):
        raise StateResolutionError(f"state set {index} is not a mapping")
    return state_set


def separate(
    state_sets: Sequence[Mapping[StateKey, str]],
) -> tuple[dict[StateKey, str], dict[StateKey, set[str]]]:
    """``(unconflicted, conflicted)``: the unconflicted state map, and for each conflicted
    key the set of event IDs the state sets give it."""
    sets = [_check_state_set(i, s) for i, s in enumerate(state_sets)]
    if not sets:
        return {}, {}
    first = sets[0]
    others = sets[1:]
    if all(s is first for s in others):
        return dict(first), {}
    first_items: AbstractSet[tuple[StateKey, str]] = first.items()
    try:
        # Keys whose value differs in some set, or which some set lacks.
        disputed_keys: set[StateKey] = set()
        for other in others:
            if other is not first:
                other_items: AbstractSet[tuple[StateKey, str]] = other.items()
                disputed_keys.update(item[0] for item in first_items ^ other_items)
    except TypeError as exc:  # unhashable key or value
        raise StateResolutionError(f"state set holds an unhashable key or value: {exc}") from None
    if not disputed_keys:
        return dict(first), {}
    unconflicted = dict(first)
    for key in disputed_keys:
        unconflicted.pop(key, None)
    conflicted: dict[StateKey, set[str]] = {}
    for key in disputed_keys:
        if not (
            isinstance(key, tuple)
            and len(key) == 2
            and isinstance(key[0], str)
            and isinstance(key[1], str)
        ):
            raise StateResolutionError(f"state key {key!r} is not a (type, state_key) pair")
        values: set[str] = set()
        for s in sets:
            value = s.get(key)
            if value is None:
                continue
            if not isinstance(value, str):
                raise StateResolutionError(f"state at {key!r} is not an event ID: {value!r}")
            values.add(value)
        conflicted[key] = values
    return unconflicted, conflicted
