"""Auth events selection and the rules about an event's own ``auth_events`` list.

Rule 2 in rooms 10/11, rule 3 in room 12 (where the create event is never listed and
is supplied separately).
"""

from __future__ import annotations

from collections.abc import Container, Mapping
from typing import Any

from federation.auth._util import (
    CREATE,
    CREATE_KEY,
    JOIN_RULES_KEY,
    MEMBER,
    POWER_LEVELS_KEY,
    THIRD_PARTY_INVITE,
    AuthState,
    content_of,
    rule,
)
from federation.auth.membership import AUTHORISER_KEY
from federation.auth.third_party import third_party_token
from federation.errors import AuthError, MissingAuthEvent
from federation.room_versions import RoomVersion, get


def auth_types_for_event(
    pdu: dict[str, Any], room_version: str | RoomVersion
) -> set[tuple[str, str]]:
    """The (type, state_key) pairs the spec's auth events selection allows for ``pdu``.

    Nothing for a create event. Otherwise the create event (not in room 12), the power
    levels, the sender's member event; for member events also the target's member
    event, the join rules (join/invite/knock), the third-party invite named by
    ``signed.token`` (invite) and the authorising user's member event (join with
    ``join_authorised_via_users_server``). Malformed fields simply add nothing.
    """
    rv = get(room_version)
    if pdu.get("type") == CREATE:
        return set()
    types: set[tuple[str, str]] = {POWER_LEVELS_KEY}
    if not rv.room_id_is_create_hash:
        types.add(CREATE_KEY)
    sender = pdu.get("sender")
    if isinstance(sender, str):
        types.add((MEMBER, sender))
    if pdu.get("type") != MEMBER:
        return types
    content = content_of(pdu)
    target = pdu.get("state_key")
    if isinstance(target, str):
        types.add((MEMBER, target))
    membership = content.get("membership")
    if membership in ("join", "invite", "knock"):
        types.add(JOIN_RULES_KEY)
    if membership == "invite" and "third_party_invite" in content:
        token = third_party_token(content)
        if token is not None:
            types.add((THIRD_PARTY_INVITE, token))
    if membership == "join" and rv.restricted:
        authoriser = content.get(AUTHORISER_KEY)
        if isinstance(authoriser, str):
            types.add((MEMBER, authoriser))
    return types


def build_auth_state(
    pdu: dict[str, Any],
    auth_events: Mapping[str, dict[str, Any]],
    room_version: str | RoomVersion,
    *,
    create_event: dict[str, Any] | None = None,
    rejected: Container[str] = (),
) -> AuthState:
    """Check ``pdu``'s ``auth_events`` list and return the auth state for :func:`check`.

    ``auth_events`` maps event IDs to PDUs and must hold every ID that ``pdu`` lists;
    ``rejected`` holds the IDs of events rejected on receipt. Rules applied: every listed
    ID is known (else :class:`MissingAuthEvent`), each listed event is in the same room
    (2.5), no duplicate (type, state_key) (2.1), only pairs the selection allows (2.2),
    none rejected (2.3), and a create event is listed (2.4, rooms 10/11). In room 12 the
    create event must not be listed; it is passed as ``create_event``, must not be in
    ``rejected`` and is added to the result. A create event gets an empty auth state.
    """
    rv = get(room_version)
    if pdu.get("type") == CREATE:
        return {}
    ids = pdu.get("auth_events")
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise AuthError("auth_events is not a list of event IDs", rule(rv, "2"))
    allowed = auth_types_for_event(pdu, rv)
    state: AuthState = {}
    for event_id in ids:
        event = auth_events.get(event_id)
        if event is None:
            raise MissingAuthEvent(f"auth event {event_id} is not available", rule(rv, "2"))
        key = (event.get("type"), event.get("state_key"))
        if rv.room_id_is_create_hash and key[0] == CREATE:
            raise AuthError(
                f"auth_events lists the create event {event_id}; room 12 forbids it", "3.2"
            )
        if event.get("room_id") != pdu.get("room_id"):
            raise AuthError(
                f"auth event {event_id} belongs to room {event.get('room_id')!r}", rule(rv, "2.5")
            )
        if not isinstance(key[0], str) or not isinstance(key[1], str):
            raise AuthError(
                f"auth event {event_id} is not a state event with a string type and state_key",
                rule(rv, "2.2"),
            )
        if key in state:
            raise AuthError(f"auth_events lists {key} twice", rule(rv, "2.1"))
        if key not in allowed:
            raise AuthError(
                f"auth event {event_id} ({key}) is not chosen by the auth events selection",
                rule(rv, "2.2"),
            )
        if event_id in rejected:
            raise AuthError(f"auth event {event_id} was rejected", rule(rv, "2.3"))
        state[(key[0], key[1])] = event
    if rv.room_id_is_create_hash:
        state[CREATE_KEY] = _room12_create(pdu, create_event, rejected)
    elif CREATE_KEY not in state:
        raise AuthError("auth_events does not list the create event", "2.4")
    return state


def _room12_create(
    pdu: dict[str, Any], create_event: dict[str, Any] | None, rejected: Container[str]
) -> dict[str, Any]:
    if create_event is None:
        raise MissingAuthEvent("room 12 needs the create event passed as create_event", "2")
    room_id = pdu.get("room_id")
    if isinstance(room_id, str) and room_id.startswith("!") and "$" + room_id[1:] in rejected:
        raise AuthError("the room's create event was rejected", "2")
    return create_event
