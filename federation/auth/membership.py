"""Rule 4 (rooms 10/11; rule 5 in room 12): ``m.room.member`` events.

One function per membership. Each returns if the event is allowed and raises
:class:`AuthError` naming the failed rule otherwise.
"""

from __future__ import annotations

from typing import Any

from federation.auth._util import (
    AuthState,
    content_of,
    create_event_of,
    creator_of,
    join_rule_of,
    membership_of,
    rule,
)
from federation.auth.create import create_event_id
from federation.auth.power import named_level, user_power_level
from federation.auth.third_party import check_third_party_invite
from federation.errors import AuthError
from federation.identifiers import domain_of
from federation.room_versions import RoomVersion

AUTHORISER_KEY = "join_authorised_via_users_server"


def check_member(pdu: dict[str, Any], auth_state: AuthState, rv: RoomVersion) -> None:
    """All of rule 4 for an ``m.room.member`` event."""
    state_key = pdu.get("state_key")
    content = content_of(pdu)
    if not isinstance(state_key, str) or "membership" not in content:
        raise AuthError(
            "a member event needs a string state_key and content.membership", rule(rv, "4.1")
        )
    membership = content["membership"]
    if membership == "join" and AUTHORISER_KEY in content:
        _check_authoriser_signed(pdu, content[AUTHORISER_KEY], rv)

    if membership == "join" and _is_creator_first_join(pdu, auth_state, rv):
        return
    if ":" not in state_key:
        # Synapse takes the target's server name from the state key and refuses an ID
        # without one; rooms shared with it must agree.
        raise AuthError(f"the state key {state_key!r} is not a user ID", rule(rv, "4.1"))
    _check_target_federates(pdu, auth_state, rv)

    if membership == "join":
        _check_join(pdu, auth_state, rv)
    elif membership == "invite":
        _check_invite(pdu, auth_state, rv)
    elif membership == "leave":
        _check_leave(pdu, auth_state, rv)
    elif membership == "ban":
        _check_ban(pdu, auth_state, rv)
    elif membership == "knock":
        _check_knock(pdu, auth_state, rv)
    else:
        raise AuthError(f"unknown membership {membership!r}", rule(rv, "4.8"))


def _check_authoriser_signed(pdu: dict[str, Any], authoriser: object, rv: RoomVersion) -> None:
    """Rule 4.2: the authorising user's server must have signed the event.

    Only the presence of that server's signature is checked here; verifying it needs the
    server's keys, which is the job of the signature checks on receipt
    (:func:`federation.events.required_signers` names that server). Like Synapse, the rule
    is applied to joins only.
    """
    if not isinstance(authoriser, str) or ":" not in authoriser:
        raise AuthError(f"{AUTHORISER_KEY} is not a user ID: {authoriser!r}", rule(rv, "4.2"))
    signatures = pdu.get("signatures")
    server = domain_of(authoriser)
    if not isinstance(signatures, dict) or not signatures.get(server):
        raise AuthError(
            f"the event is not signed by {server}, the server of {AUTHORISER_KEY}",
            rule(rv, "4.2"),
        )


def _is_creator_first_join(pdu: dict[str, Any], auth_state: AuthState, rv: RoomVersion) -> bool:
    """Rule 4.3.1: the only previous event is the create event and the creator joins.

    As in Synapse, ``sender`` is not compared here (rule 4.3.2 is skipped when this holds).
    """
    prev_events = pdu.get("prev_events")
    if not isinstance(prev_events, list) or len(prev_events) != 1:
        return False
    create = create_event_of(auth_state, rv)
    creator = creator_of(create, rv)
    if pdu["state_key"] != creator:
        return False
    return bool(prev_events[0] == create_event_id(create, pdu.get("room_id"), rv))


def _check_target_federates(pdu: dict[str, Any], auth_state: AuthState, rv: RoomVersion) -> None:
    """Synapse's extension of rule 3 to member events: with ``m.federate`` not ``true``,
    the *target* must also be on the create event's server."""
    create = create_event_of(auth_state, rv)
    if content_of(create).get("m.federate", True) is True:
        return
    if _domain(pdu["state_key"]) != _domain(create.get("sender")):
        raise AuthError(
            "the room is not federated and the target user is on another server", rule(rv, "3")
        )


def _domain(user_id: object) -> str | None:
    if isinstance(user_id, str) and ":" in user_id:
        return domain_of(user_id)
    return None


def _check_join(pdu: dict[str, Any], auth_state: AuthState, rv: RoomVersion) -> None:
    """Rules 4.3.2-4.3.7."""
    sender, target = pdu["sender"], pdu["state_key"]
    if sender != target:
        raise AuthError("a user cannot join on behalf of another user", rule(rv, "4.3.2"))
    current = membership_of(sender, auth_state)
    if current == "ban":
        raise AuthError(f"{sender} is banned from the room", rule(rv, "4.3.3"))
    join_rule = join_rule_of(auth_state)
    if join_rule in ("invite", "knock"):
        if current in ("invite", "join"):
            return
        raise AuthError(
            f"the join rule is {join_rule} and {sender} is not invited", rule(rv, "4.3.4")
        )
    if join_rule in ("restricted", "knock_restricted"):
        if current in ("invite", "join"):
            return
        _check_restricted_authoriser(pdu, auth_state, rv)
        return
    if join_rule == "public":
        return
    raise AuthError(f"joins are not allowed under join rule {join_rule!r}", rule(rv, "4.3.7"))


def _check_restricted_authoriser(
    pdu: dict[str, Any], auth_state: AuthState, rv: RoomVersion
) -> None:
    """Rule 4.3.5.2: the authorising user must be joined and able to invite."""
    authoriser = content_of(pdu).get(AUTHORISER_KEY)
    if not isinstance(authoriser, str):
        raise AuthError(
            f"a restricted join needs {AUTHORISER_KEY} naming a user", rule(rv, "4.3.5.2")
        )
    if membership_of(authoriser, auth_state) != "join":
        raise AuthError(
            f"the authorising user {authoriser} is not joined to the room", rule(rv, "4.3.5.2")
        )
    if user_power_level(authoriser, auth_state, rv) < named_level(auth_state, "invite"):
        raise AuthError(
            f"the authorising user {authoriser} lacks the power to invite", rule(rv, "4.3.5.2")
        )


def _check_invite(pdu: dict[str, Any], auth_state: AuthState, rv: RoomVersion) -> None:
    """Rules 4.4.1-4.4.5."""
    if "third_party_invite" in content_of(pdu):
        check_third_party_invite(pdu, auth_state, rv)
        return
    sender, target = pdu["sender"], pdu["state_key"]
    if membership_of(sender, auth_state) != "join":
        raise AuthError(f"the inviter {sender} is not joined to the room", rule(rv, "4.4.2"))
    target_membership = membership_of(target, auth_state)
    if target_membership in ("join", "ban"):
        raise AuthError(
            f"{target} cannot be invited: their membership is {target_membership}",
            rule(rv, "4.4.3"),
        )
    if user_power_level(sender, auth_state, rv) >= named_level(auth_state, "invite"):
        return
    raise AuthError(f"{sender} lacks the power to invite", rule(rv, "4.4.5"))


def _check_leave(pdu: dict[str, Any], auth_state: AuthState, rv: RoomVersion) -> None:
    """Rules 4.5.1-4.5.5 (leaving, rejecting or retracting, kicking, unbanning)."""
    sender, target = pdu["sender"], pdu["state_key"]
    sender_membership = membership_of(sender, auth_state)
    if sender == target:
        if sender_membership in ("invite", "join", "knock"):
            return
        raise AuthError(
            f"{sender} cannot leave: their membership is {sender_membership}", rule(rv, "4.5.1")
        )
    if sender_membership != "join":
        raise AuthError(f"{sender} is not joined to the room", rule(rv, "4.5.2"))
    sender_level = user_power_level(sender, auth_state, rv)
    if membership_of(target, auth_state) == "ban" and sender_level < named_level(auth_state, "ban"):
        raise AuthError(f"{sender} lacks the power to unban {target}", rule(rv, "4.5.3"))
    if (
        sender_level >= named_level(auth_state, "kick")
        and user_power_level(target, auth_state, rv) < sender_level
    ):
        return
    raise AuthError(f"{sender} lacks the power to kick {target}", rule(rv, "4.5.5"))


def _check_ban(pdu: dict[str, Any], auth_state: AuthState, rv: RoomVersion) -> None:
    """Rules 4.6.1-4.6.3."""
    sender, target = pdu["sender"], pdu["state_key"]
    if membership_of(sender, auth_state) != "join":
        raise AuthError(f"{sender} is not joined to the room", rule(rv, "4.6.1"))
    sender_level = user_power_level(sender, auth_state, rv)
    if (
        sender_level >= named_level(auth_state, "ban")
        and user_power_level(target, auth_state, rv) < sender_level
    ):
        return
    raise AuthError(f"{sender} lacks the power to ban {target}", rule(rv, "4.6.3"))


def _check_knock(pdu: dict[str, Any], auth_state: AuthState, rv: RoomVersion) -> None:
    """Rules 4.7.1-4.7.4."""
    join_rule = join_rule_of(auth_state)
    if join_rule not in ("knock", "knock_restricted"):
        raise AuthError(f"knocking is not allowed under join rule {join_rule!r}", rule(rv, "4.7.1"))
    sender, target = pdu["sender"], pdu["state_key"]
    if sender != target:
        raise AuthError("a user cannot knock on behalf of another user", rule(rv, "4.7.2"))
    current = membership_of(sender, auth_state)
    if current not in ("ban", "invite", "join"):
        return
    raise AuthError(f"{sender} cannot knock: their membership is {current}", rule(rv, "4.7.4"))
