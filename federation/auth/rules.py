"""The authorization rules of rooms 10, 11 and 12: :func:`check`, top-level order.

Numbering follows the room-10/11 spec text; in room 12 every rule from 2 on is one
higher (see :func:`federation.auth._util.rule`).
"""

from __future__ import annotations

from typing import Any

from federation.auth._util import (
    CREATE,
    FORMAT_RULE,
    MEMBER,
    POWER_LEVELS,
    THIRD_PARTY_INVITE,
    AuthState,
    content_of,
    create_event_of,
    membership_of,
    require_content,
    rule,
)
from federation.auth.create import check_create, check_room_id_derivation
from federation.auth.membership import check_member
from federation.auth.power import named_level, required_power_for_event, user_power_level
from federation.auth.power_levels import check_power_levels
from federation.errors import AuthError
from federation.identifiers import domain_of, is_valid_user_id
from federation.room_versions import RoomVersion, get


def check(pdu: dict[str, Any], auth_state: AuthState, room_version: str | RoomVersion) -> None:
    """Apply every authorization rule of ``room_version`` to ``pdu``; return if allowed.

    ``auth_state`` maps (type, state_key) to the PDUs the rules consult: the event's
    auth events, or the room state before it (state resolution). In room 12 it must hold
    the create event. The rules about the ``auth_events`` list itself are applied by
    :func:`federation.auth.build_auth_state`.

    Raises :class:`AuthError` (``rule`` = the spec's rule number, ``reason`` in words),
    :class:`~federation.errors.MissingAuthEvent` when the create event is needed and
    absent, :class:`~federation.errors.UnsupportedRoomVersion` for other versions.
    The cryptographic signature checks (including rule 4.2's authorising server) are
    done on receipt by :mod:`federation.events`; here only the presence of the
    authorising server's signature is checked. Third-party invite ``signed`` blocks
    are verified here.
    """
    rv = get(room_version)
    _check_shape(pdu)
    if pdu["type"] == CREATE:
        check_create(pdu, rv)
        return
    if rv.room_id_is_create_hash:
        check_room_id_derivation(pdu, auth_state, rv)
    create = create_event_of(auth_state, rv)
    _check_federate(pdu, create, rv)

    if pdu["type"] == MEMBER:
        check_member(pdu, auth_state, rv)
        return

    sender = pdu["sender"]
    if membership_of(sender, auth_state) != "join":
        raise AuthError(f"{sender} is not joined to the room", rule(rv, "5"))

    level = user_power_level(sender, auth_state, rv)
    if pdu["type"] == THIRD_PARTY_INVITE:
        if level >= named_level(auth_state, "invite"):
            return
        raise AuthError(f"{sender} lacks the power to invite", rule(rv, "6.1"))

    state_key = pdu.get("state_key")
    required = required_power_for_event(pdu["type"], state_key is not None, auth_state)
    if required > level:
        raise AuthError(
            f"{sender} has power {level} but {pdu['type']} needs {required}", rule(rv, "7")
        )
    if isinstance(state_key, str) and state_key.startswith("@") and state_key != sender:
        raise AuthError(
            f"state_key {state_key!r} names another user than the sender", rule(rv, "8")
        )
    if pdu["type"] == POWER_LEVELS:
        check_power_levels(pdu, auth_state, rv)


def _check_shape(pdu: dict[str, Any]) -> None:
    """Fields every rule relies on: a string type, a user ID sender, object content."""
    if not isinstance(pdu, dict):
        raise AuthError("the PDU is not a JSON object", FORMAT_RULE)
    if not isinstance(pdu.get("type"), str):
        raise AuthError("the PDU has no string type", FORMAT_RULE)
    if not is_valid_user_id(pdu.get("sender")):
        raise AuthError(f"sender {pdu.get('sender')!r} is not a user ID", FORMAT_RULE)
    if "state_key" in pdu and not isinstance(pdu["state_key"], str):
        raise AuthError("state_key is not a string", FORMAT_RULE)
    require_content(pdu)


def _check_federate(pdu: dict[str, Any], create: dict[str, Any], rv: RoomVersion) -> None:
    """Rule 3: ``m.federate`` and the sender's server.

    The spec says "set to ``false``"; like Synapse, any value other than ``true`` makes
    the room unfederated.
    """
    if content_of(create).get("m.federate", True) is True:
        return
    create_sender = create.get("sender")
    create_domain = (
        domain_of(create_sender)
        if isinstance(create_sender, str) and ":" in create_sender
        else None
    )
    if domain_of(pdu["sender"]) != create_domain:
        raise AuthError(
            "the room is not federated and the sender is on another server than the creator",
            rule(rv, "3"),
        )
