"""Power: room creators, users' power levels, named levels and required power levels.

These read the ``m.room.create`` and ``m.room.power_levels`` events of an auth state.
State resolution uses :func:`user_power_level` and :func:`creators` for its power
ordering, so they are public.
"""

from __future__ import annotations

from typing import Any

from federation.auth._util import (
    POWER_LEVELS_KEY,
    AuthState,
    content_of,
    create_event_of,
    creator_of,
    is_int,
)
from federation.errors import AuthError
from federation.identifiers import is_valid_server_name
from federation.room_versions import RoomVersion, get

#: Defaults of the named levels when the power levels event does not set them.
NAMED_LEVEL_DEFAULTS: dict[str, int] = {
    "invite": 0,
    "kick": 50,
    "ban": 50,
    "redact": 50,
    "users_default": 0,
    "events_default": 0,
    "state_default": 50,
}

#: Power level of creators when there is no power levels event (rooms 10 and 11).
CREATOR_DEFAULT_LEVEL = 100


def _level(value: object, where: str) -> int:
    if not is_int(value):
        raise AuthError(
            f"the current m.room.power_levels event has a non-integer {where}: {value!r}",
            "power-levels-state",
        )
    assert isinstance(value, int)
    return value


def creators(auth_state: AuthState, room_version: str | RoomVersion) -> frozenset[str]:
    """The room creators according to the create event of ``auth_state``.

    Room 10: ``content.creator``. Room 11: the create event's ``sender``. Room 12: the
    ``sender`` plus every entry of ``content.additional_creators`` (non-string entries
    are ignored here; the create rules reject them). Raises
    :class:`~federation.errors.MissingAuthEvent` when there is no create event.
    """
    rv = get(room_version)
    create = create_event_of(auth_state, rv)
    found: set[str] = set()
    creator = creator_of(create, rv)
    if isinstance(creator, str):
        found.add(creator)
    if rv.creators_have_infinite_power:
        extra = content_of(create).get("additional_creators")
        if isinstance(extra, list):
            found.update(x for x in extra if isinstance(x, str))
    return frozenset(found)


def power_levels_content(auth_state: AuthState) -> dict[str, Any] | None:
    """``content`` of the power levels event of ``auth_state``, or ``None`` if there is none."""
    event = auth_state.get(POWER_LEVELS_KEY)
    return None if event is None else content_of(event)


def user_power_level(
    user_id: str, auth_state: AuthState, room_version: str | RoomVersion
) -> int | float:
    """The power level of ``user_id``.

    Room 12 creators have ``float("inf")``. Otherwise the ``users`` entry of the power
    levels event, else its ``users_default`` (default 0). Without a power levels event
    the creator has 100 (rooms 10 and 11) and everyone else 0. Raises
    :class:`AuthError` if the power levels event holds a non-integer for the user.
    """
    rv = get(room_version)
    if rv.creators_have_infinite_power and user_id in creators(auth_state, rv):
        return float("inf")
    content = power_levels_content(auth_state)
    if content is None:
        if not rv.creators_have_infinite_power and user_id in creators(auth_state, rv):
            return CREATOR_DEFAULT_LEVEL
        return 0
    users = content.get("users")
    if isinstance(users, dict) and user_id in users:
        return _level(users[user_id], f"users[{user_id!r}]")
    if "users_default" in content:
        return _level(content["users_default"], "users_default")
    return 0


def named_level(auth_state: AuthState, name: str) -> int:
    """A top-level level of the power levels event (``invite``, ``kick``, ``ban``, ...).

    Defaults (also when there is no power levels event): invite 0, kick/ban/redact 50,
    users_default/events_default 0, state_default 50.
    """
    content = power_levels_content(auth_state)
    if content is None or name not in content:
        return NAMED_LEVEL_DEFAULTS[name]
    return _level(content[name], name)


def required_power_for_event(event_type: str, is_state: bool, auth_state: AuthState) -> int:
    """The spec's *required power level* to send an event of ``event_type``.

    ``events[event_type]`` if set, else ``state_default`` (state events) or
    ``events_default``. Without a power levels event this is 50 for state events and 0
    for others: the spec's client-server text reads both ways on ``state_default`` then
    (50 or 0); Synapse uses 50 and so do we.
    """
    content = power_levels_content(auth_state)
    if content is not None:
        events = content.get("events")
        if isinstance(events, dict) and event_type in events:
            return _level(events[event_type], f"events[{event_type!r}]")
    return named_level(auth_state, "state_default" if is_state else "events_default")


def is_valid_creator_id(value: object) -> bool:
    """Whether ``value`` is a valid entry of ``additional_creators`` (rule 1.4, room 12).

    The spec asks for "the same user ID validation applied to ``sender``"; as in
    Synapse: ``@localpart:server`` with a valid server name, at most 255 characters and
    255 UTF-8 bytes (the localpart is not checked further).
    """
    if not isinstance(value, str) or not value.startswith("@") or ":" not in value[1:]:
        return False
    if len(value) > 255 or len(value.encode("utf-8", "surrogatepass")) > 255:
        return False
    return is_valid_server_name(value[1:].split(":", 1)[1])
