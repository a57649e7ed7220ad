"""Validated, memoised access to the PDUs that state resolution reads.

State resolution is handed a plain ``Mapping[str, dict]`` of event ID to PDU.  Every
step reads the same few fields (``type``, ``state_key``, ``sender``,
``origin_server_ts``, ``auth_events``) many times, so :class:`EventGraph` checks each
field once, caches the parsed value, and reports a missing event or a malformed field
as :class:`~federation.errors.StateResolutionError` naming the event.

Event IDs are taken as given (the mapping's keys); they are never recomputed.

Room 12 (MSC4291) leaves the ``m.room.create`` event out of ``auth_events``; its ID is
``$`` + the room ID without its ``!``.  Like Synapse, the graph adds that implicit edge
back, so auth chains, the auth difference, sender power levels and the iterative auth
checks of room 12 all see the create event exactly as earlier rooms do.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from federation.errors import StateResolutionError
from federation.room_versions import RoomVersion

StateKey = tuple[str, str]
StateMap = Mapping[StateKey, str]
PDU = dict[str, Any]

CREATE = "m.room.create"
POWER_LEVELS = "m.room.power_levels"
JOIN_RULES = "m.room.join_rules"
MEMBER = "m.room.member"

CREATE_KEY: StateKey = (CREATE, "")
POWER_LEVELS_KEY: StateKey = (POWER_LEVELS, "")
JOIN_RULES_KEY: StateKey = (JOIN_RULES, "")


def _bad(event_id: str, what: str) -> StateResolutionError:
    return StateResolutionError(f"malformed event {event_id!r}: {what}")


class EventGraph:
    """The auth-event DAG over ``events``, read lazily and checked as it is read."""

    __slots__ = ("_auth", "_events", "_keys", "_rv", "_senders", "_ts")

    def __init__(self, events: Mapping[str, PDU], room_version: RoomVersion) -> None:
        if not isinstance(events, Mapping):
            raise StateResolutionError("events must be a mapping of event ID to PDU")
        self._events = events
        self._rv = room_version
        self._auth: dict[str, tuple[str, ...]] = {}
        self._keys: dict[str, StateKey] = {}
        self._senders: dict[str, str] = {}
        self._ts: dict[str, int] = {}

    @property
    def room_version(self) -> RoomVersion:
        return self._rv

    @property
    def events(self) -> Mapping[str, PDU]:
        return self._events

    def pdu(self, event_id: str) -> PDU:
        """The PDU of ``event_id``; raises if it is missing or not a JSON object."""
        if not isinstance(event_id, str):
            raise StateResolutionError(f"event ID {event_id!r} is not a string")
        try:
            pdu = self._events[event_id]
        except KeyError:
            raise StateResolutionError(f"missing event {event_id!r}") from None
        if not isinstance(pdu, dict):
            raise _bad(event_id, "the PDU is not a JSON object")
        return pdu

    def auth_ids(self, event_id: str) -> tuple[str, ...]:
        """The event's auth event IDs (room 12: plus the implicit create event)."""
        cached = self._auth.get(event_id)
        if cached is not None:
            return cached
        pdu = self.pdu(event_id)
        raw = pdu.get("auth_events")
        if type(raw) is not list:
            raise _bad(event_id, "auth_events is not a list of event IDs")
        for aid in raw:
            if type(aid) is not str:
                raise _bad(event_id, "auth_events is not a list of event IDs")
        # Duplicates are harmless to every step (sets, first match, last match), so
        # the list is kept as it is.
        ids: list[str] = raw
        if self._rv.room_id_is_create_hash and not (
            pdu.get("type") == CREATE and pdu.get("state_key") == ""
        ):
            room_id = pdu.get("room_id")
            if not isinstance(room_id, str) or not room_id.startswith("!") or len(room_id) < 2:
                raise _bad(event_id, "room_id is missing or not a room ID")
            create_id = "$" + room_id[1:]
            if create_id not in self._events:
                raise StateResolutionError(
                    f"missing event {create_id!r}: the m.room.create event of room "
                    f"{room_id!r}, an implicit auth event of {event_id!r}"
                )
            if create_id not in ids:
                ids = [*ids, create_id]
        result = tuple(ids)
        self._auth[event_id] = result
        return result

    def key(self, event_id: str) -> StateKey:
        """The ``(type, state_key)`` of a state event."""
        cached = self._keys.get(event_id)
        if cached is not None:
            return cached
        pdu = self.pdu(event_id)
        etype = pdu.get("type")
        state_key = pdu.get("state_key")
        if not isinstance(etype, str):
            raise _bad(event_id, "type is missing or not a string")
        if not isinstance(state_key, str):
            raise _bad(event_id, "not a state event (state_key missing or not a string)")
        key = (etype, state_key)
        self._keys[event_id] = key
        return key

    def sender(self, event_id: str) -> str:
        cached = self._senders.get(event_id)
        if cached is not None:
            return cached
        sender = self.pdu(event_id).get("sender")
        if not isinstance(sender, str):
            raise _bad(event_id, "sender is missing or not a string")
        self._senders[event_id] = sender
        return sender

    def origin_server_ts(self, event_id: str) -> int:
        cached = self._ts.get(event_id)
        if cached is not None:
            return cached
        ts = self.pdu(event_id).get("origin_server_ts")
        if not isinstance(ts, int) or isinstance(ts, bool):
            raise _bad(event_id, "origin_server_ts is missing or not an integer")
        self._ts[event_id] = ts
        return ts

    def content(self, event_id: str) -> dict[str, Any]:
        content = self.pdu(event_id).get("content")
        if not isinstance(content, dict):
            raise _bad(event_id, "content is missing or not a JSON object")
        return content

    def auth_events_by_key(
        self, event_id: str, excluded: frozenset[str] | set[str]
    ) -> dict[StateKey, PDU]:
        """The event's auth events keyed by ``(type, state_key)``, skipping ``excluded``.

        Later entries win on a duplicated key, as in Synapse.
        """
        result: dict[StateKey, PDU] = {}
        for aid in self.auth_ids(event_id):
            if aid in excluded:
                continue
            result[self.key(aid)] = self.pdu(aid)
        return result
