"""The authorization rules of room versions 10, 11 and 12 (pure code).

Public API:

- :func:`check` applies every rule of a room version to a PDU against an auth state
  (a mapping of (type, state_key) to PDUs) and raises :class:`AuthError` if it fails.
- :func:`auth_types_for_event` is the spec's auth events selection.
- :func:`build_auth_state` applies the rules about a PDU's own ``auth_events`` list and
  returns the auth state for :func:`check`.
- :func:`user_power_level`, :func:`creators`, :func:`named_level` and
  :func:`required_power_for_event` read power from an auth state (state resolution
  uses them for its power ordering).

``AuthError.rule`` is the spec's rule number for the room version (e.g. ``"4.3.2"`` in
rooms 10/11 is ``"5.3.2"`` in room 12), or ``"event-format"`` for structural problems
no numbered rule covers, or ``"power-levels-state"`` when the *current* power levels
event of the auth state is malformed.
"""

from __future__ import annotations

from federation.auth.create import RECOGNISED_ROOM_VERSIONS
from federation.auth.power import (
    creators,
    named_level,
    required_power_for_event,
    user_power_level,
)
from federation.auth.power_levels import validate_power_levels_content
from federation.auth.rules import check
from federation.auth.selection import auth_types_for_event, build_auth_state
from federation.errors import AuthError, MissingAuthEvent

__all__ = [
    "RECOGNISED_ROOM_VERSIONS",
    "AuthError",
    "MissingAuthEvent",
    "auth_types_for_event",
    "build_auth_state",
    "check",
    "creators",
    "named_level",
    "required_power_for_event",
    "user_power_level",
    "validate_power_levels_content",
]
