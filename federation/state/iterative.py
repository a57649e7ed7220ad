"""Steps 2 and 4: the iterative auth checks.

Each event in turn is checked against an *auth state* built the way the spec and
Synapse build it: the event's own (non-rejected) auth events, keyed by
``(type, state_key)``, overlaid with the partially resolved state for every key the
auth rules may need (``auth_types_for_event``), skipping rejected events.  So the
resolved state wins where it has the key, and the event's auth events fill the gaps.
Room 12 events carry no create event in ``auth_events``; the graph supplies the room's
create event as an implicit auth event (from the room ID), so it is always present.

An event that passes is placed in the resolved state at its key; one that fails
(:class:`~federation.errors.AuthError`, or any other engine error about its shape) is
dropped.  Events known to be rejected are never admitted.

Given event IDs
---------------
State resolution takes event IDs as given, but two rules of
:func:`federation.auth.check` compare IDs it *computes* from the create event: the
room-12 room ID derivation (rule 2, a state-independent rule that Synapse does not rerun
during resolution) and the creator's first join (rule 4.3.1: "the only previous event is
the create event").  :class:`_GivenIds` bridges the two: where the PDU names the create
event by its given ID, the copy handed to ``check`` names it by the ID ``check``
computes.  For real events the two are equal and the PDU is passed unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from federation.auth import auth_types_for_event, check
from federation.errors import FederationError, StateResolutionError
from federation.events import compute_event_id, compute_room_id

from ._events import CREATE_KEY, MEMBER, PDU, EventGraph, StateKey

__all__ = ["iterative_auth_checks"]

_UNEXPECTED = (KeyError, TypeError, ValueError, AttributeError, IndexError)


class _GivenIds:
    """Translate references to the create event's given ID into computed IDs."""

    __slots__ = ("_computed", "_graph")

    def __init__(self, graph: EventGraph) -> None:
        self._graph = graph
        self._computed: dict[str, str | None] = {}

    def _computed_create_id(self, create_id: str) -> str | None:
        if create_id in self._computed:
            return self._computed[create_id]
        create = self._graph.pdu(create_id)
        rv = self._graph.room_version
        try:
            if rv.room_id_is_create_hash:
                computed: str | None = "$" + compute_room_id(create)[1:]
            else:
                computed = compute_event_id(create, rv.identifier)
        except FederationError:
            computed = None
        self._computed[create_id] = computed
        return computed

    def pdu_for_check(self, event_id: str, pdu: PDU, create_id: str | None) -> PDU:
        if create_id is None or self._graph.key(event_id) == CREATE_KEY:
            return pdu
        computed = self._computed_create_id(create_id)
        if computed is None or computed == create_id:
            return pdu
        patched = dict(pdu)
        if self._graph.room_version.room_id_is_create_hash:
            patched["room_id"] = "!" + computed[1:]
        prev = pdu.get("prev_events")
        if pdu.get("type") == MEMBER and isinstance(prev, list) and prev == [create_id]:
            patched["prev_events"] = [computed]
        return patched


def iterative_auth_checks(
    graph: EventGraph,
    event_ids: Iterable[str],
    base_state: Mapping[StateKey, str],
    rejected: frozenset[str] | set[str] = frozenset(),
) -> dict[StateKey, str]:
    resolved = dict(base_state)
    version = graph.room_version.identifier
    given_ids = _GivenIds(graph)
    for eid in event_ids:
        key = graph.key(eid)
        pdu = graph.pdu(eid)
        auth_ids: dict[StateKey, str] = {}
        for aid in graph.auth_ids(eid):
            if aid not in rejected:
                auth_ids[graph.key(aid)] = aid
        if eid in rejected:
            continue
        try:
            needed = auth_types_for_event(pdu, version)
        except FederationError:
            continue
        except _UNEXPECTED as exc:
            raise StateResolutionError(
                f"auth rules could not read event {eid!r}: {type(exc).__name__}: {exc}"
            ) from exc
        for needed_key in needed:
            state_id = resolved.get(needed_key)
            if state_id is not None and state_id not in rejected:
                auth_ids[needed_key] = state_id
        auth_state: dict[StateKey, dict[str, Any]] = {k: graph.pdu(v) for k, v in auth_ids.items()}
        candidate = given_ids.pdu_for_check(eid, pdu, auth_ids.get(CREATE_KEY))
        try:
            check(candidate, auth_state, version)
        except FederationError:
            continue
        except _UNEXPECTED as exc:
            raise StateResolutionError(
                f"auth rules failed on event {eid!r}: {type(exc).__name__}: {exc}"
            ) from exc
        resolved[key] = eid
    return resolved
