"""Rule 9 (rooms 10/11; rule 10 in room 12): ``m.room.power_levels`` events.

Room 12 inserts rule 10.4 (creators must not appear in ``users``), which shifts the
later sub-rules by one; :func:`_sub` produces the right number for each version.
"""

from __future__ import annotations

from typing import Any

from federation.auth._util import POWER_LEVELS_KEY, AuthState, content_of, is_int, rule
from federation.auth.power import creators, user_power_level
from federation.errors import AuthError
from federation.room_versions import RoomVersion

#: Top-level integer properties (rules 9.1 and 9.5).
LEVEL_KEYS = ("users_default", "events_default", "state_default", "ban", "redact", "kick", "invite")
#: Properties mapping event types to levels (rules 9.2, 9.6 and 9.7).
MAP_KEYS = ("events", "notifications")

_MISSING = object()


def _sub(rv: RoomVersion, n: int) -> str:
    """Sub-rule ``n`` of the power levels rule, written with room-10/11 numbering."""
    if rv.creators_have_infinite_power and n >= 4:
        n += 1
    return rule(rv, f"9.{n}")


def validate_power_levels_content(content: dict[str, Any], rv: RoomVersion) -> None:
    """Rules 9.1-9.3: integer-only levels, and ``users`` keyed by valid user IDs."""
    for key in LEVEL_KEYS:
        if key in content and not is_int(content[key]):
            raise AuthError(f"power levels {key} is not an integer: {content[key]!r}", _sub(rv, 1))
    for key in MAP_KEYS:
        if key not in content:
            continue
        value = content[key]
        if not isinstance(value, dict) or not all(is_int(v) for v in value.values()):
            raise AuthError(f"power levels {key} is not an object of integer values", _sub(rv, 2))
    if "users" in content:
        users = content["users"]
        if not isinstance(users, dict):
            raise AuthError("power levels users is not an object", _sub(rv, 3))
        for user_id, level in users.items():
            if not _looks_like_user_id(user_id):
                raise AuthError(
                    f"power levels users has an invalid user ID {user_id!r}", _sub(rv, 3)
                )
            if not is_int(level):
                raise AuthError(
                    f"power levels users[{user_id!r}] is not an integer: {level!r}", _sub(rv, 3)
                )


def _looks_like_user_id(key: str) -> bool:
    """Rule 9.3's "valid user ID", read as Synapse reads it: ``@`` then ``localpart:domain``.

    Synapse does not validate the server name here (invalid IDs exist in real room
    state), so a stricter reading would make rooms diverge.
    """
    return key.startswith("@") and ":" in key[1:]


def check_power_levels(pdu: dict[str, Any], auth_state: AuthState, rv: RoomVersion) -> None:
    """All of rule 9 for an ``m.room.power_levels`` event."""
    new = content_of(pdu)
    validate_power_levels_content(new, rv)
    new_users = new.get("users", {})

    if rv.creators_have_infinite_power:
        listed = sorted(creators(auth_state, rv) & set(new_users))
        if listed:
            raise AuthError(
                f"room creators must not appear in power levels users: {', '.join(listed)}",
                "10.4",
            )

    current_event = auth_state.get(POWER_LEVELS_KEY)
    if current_event is None:
        return
    old = content_of(current_event)
    sender = pdu["sender"]
    level = user_power_level(sender, auth_state, rv)

    for key in LEVEL_KEYS:
        before, after = old.get(key, _MISSING), new.get(key, _MISSING)
        if before == after:
            continue
        if before is not _MISSING and _num(before) > level:
            raise AuthError(
                f"{sender} cannot change {key} from {before!r}, above their level {level}",
                _sub(rv, 5) + ".1",
            )
        if after is not _MISSING and _num(after) > level:
            raise AuthError(
                f"{sender} cannot set {key} to {after!r}, above their level {level}",
                _sub(rv, 5) + ".2",
            )

    for map_key in MAP_KEYS:
        _check_map_changes(map_key, _dict(old, map_key), _dict(new, map_key), level, sender, rv)

    old_users, new_users = _dict(old, "users"), _dict(new, "users")
    for user_id in old_users.keys() | new_users.keys():
        before, after = old_users.get(user_id, _MISSING), new_users.get(user_id, _MISSING)
        if before == after:
            continue
        if user_id != sender and before is not _MISSING and _num(before) >= level:
            raise AuthError(
                f"{sender} cannot change the level of {user_id} ({before!r}), "
                f"which is not below their own {level}",
                _sub(rv, 8) + ".1",
            )
        if after is not _MISSING and _num(after) > level:
            raise AuthError(
                f"{sender} cannot give {user_id} level {after!r}, above their own {level}",
                _sub(rv, 9) + ".1",
            )


def _check_map_changes(
    map_key: str,
    old: dict[str, Any],
    new: dict[str, Any],
    level: int | float,
    sender: str,
    rv: RoomVersion,
) -> None:
    """Rules 9.6 and 9.7 for the ``events`` or ``notifications`` map."""
    for name in old.keys() | new.keys():
        before, after = old.get(name, _MISSING), new.get(name, _MISSING)
        if before == after:
            continue
        if before is not _MISSING and _num(before) > level:
            raise AuthError(
                f"{sender} cannot change {map_key}[{name!r}] from {before!r}, "
                f"above their level {level}",
                _sub(rv, 6) + ".1",
            )
        if after is not _MISSING and _num(after) > level:
            raise AuthError(
                f"{sender} cannot set {map_key}[{name!r}] to {after!r}, above their level {level}",
                _sub(rv, 7) + ".1",
            )


def _dict(content: dict[str, Any], key: str) -> dict[str, Any]:
    value = content.get(key)
    return value if isinstance(value, dict) else {}


def _num(value: object) -> int:
    """A level of the current or new power levels; malformed current state is an error."""
    if not is_int(value):
        raise AuthError(
            f"the current m.room.power_levels event has a non-integer level {value!r}",
            "power-levels-state",
        )
    assert isinstance(value, int)
    return value
