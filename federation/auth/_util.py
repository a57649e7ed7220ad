"""Small helpers shared by the auth rule modules: rule numbering and safe field access.

Every accessor here tolerates malformed input (wrong types, missing keys) and either
returns ``None``/a default or raises :class:`AuthError`; none raises ``KeyError`` or
``TypeError``.
"""

from __future__ import annotations

from typing import Any

from federation.errors import AuthError, MissingAuthEvent
from federation.room_versions import RoomVersion

AuthState = dict[tuple[str, str], dict[str, Any]]

CREATE = "m.room.create"
MEMBER = "m.room.member"
JOIN_RULES = "m.room.join_rules"
POWER_LEVELS = "m.room.power_levels"
THIRD_PARTY_INVITE = "m.room.third_party_invite"

CREATE_KEY = (CREATE, "")
POWER_LEVELS_KEY = (POWER_LEVELS, "")
JOIN_RULES_KEY = (JOIN_RULES, "")

#: Rule label used for structural problems that no numbered rule covers (a PDU that
#: is not an object, a ``sender`` that is not a user ID, ``content`` not an object...).
FORMAT_RULE = "event-format"


def rule(rv: RoomVersion, number: str) -> str:
    """The spec's number for a rule written with room-10/11 numbering.

    Room 12 inserts rule 2 (room ID derived from the create event), so every top-level
    rule from 2 onwards moves down by one there.
    """
    if not rv.room_id_is_create_hash:
        return number
    head, sep, tail = number.partition(".")
    if head.isdigit() and int(head) >= 2:
        return f"{int(head) + 1}{sep}{tail}"
    return number


def content_of(event: dict[str, Any]) -> dict[str, Any]:
    """``event["content"]`` if it is an object, else an empty dict."""
    content = event.get("content")
    return content if isinstance(content, dict) else {}


def require_content(pdu: dict[str, Any]) -> dict[str, Any]:
    """The PDU's ``content``; raises :class:`AuthError` if it is missing or not an object."""
    content = pdu.get("content")
    if not isinstance(content, dict):
        raise AuthError("event content is missing or not a JSON object", FORMAT_RULE)
    return content


def membership_of(user_id: str, auth_state: AuthState) -> str | None:
    """The ``membership`` of ``user_id`` in ``auth_state``, or ``None`` (no or malformed event)."""
    event = auth_state.get((MEMBER, user_id))
    if event is None:
        return None
    membership = content_of(event).get("membership")
    return membership if isinstance(membership, str) else None


def join_rule_of(auth_state: AuthState) -> object:
    """The room's ``join_rule``; ``"invite"`` when there is no join rules event or no value.

    (Synapse's default; the result may be a non-string if the event is malformed, which
    then matches no known rule.)
    """
    event = auth_state.get(JOIN_RULES_KEY)
    if event is None:
        return "invite"
    return content_of(event).get("join_rule", "invite")


def create_event_of(auth_state: AuthState, rv: RoomVersion) -> dict[str, Any]:
    """The create event of ``auth_state``; raises :class:`MissingAuthEvent` if absent."""
    create = auth_state.get(CREATE_KEY)
    if create is None:
        number = "2" if rv.room_id_is_create_hash else "2.4"
        raise MissingAuthEvent("the m.room.create event is not in the auth state", number)
    if not isinstance(create, dict):
        raise AuthError("the m.room.create event in the auth state is not an object", FORMAT_RULE)
    return create


def is_int(value: object) -> bool:
    """A JSON integer (``bool`` is not an integer here)."""
    return type(value) is int


def creator_of(create: dict[str, Any], rv: RoomVersion) -> object:
    """The creator named by a create event: ``content.creator`` (room 10), else ``sender``."""
    if rv.create_has_creator:
        return content_of(create).get("creator")
    return create.get("sender")
