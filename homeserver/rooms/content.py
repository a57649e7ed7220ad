"""Checks of the content of events clients send, beyond the auth rules."""

from __future__ import annotations

from typing import Any

from federation.canonical import check_json_value
from federation.errors import CanonicalJSONError
from homeserver.common.errors import bad_json


def check_content(content: Any) -> dict[str, Any]:
    if not isinstance(content, dict):
        raise bad_json("Event content must be a JSON object")
    try:
        check_json_value(content)
    except CanonicalJSONError as e:
        raise bad_json(f"Invalid event content: {e}") from e
    return content


_PL_INTS = ("ban", "events_default", "invite", "kick", "redact", "state_default", "users_default")
_PL_MAPS = ("events", "notifications", "users")


def check_event_shape(event_type: str, content: dict[str, Any], is_state: bool) -> None:
    """Refuse (400) client events of core types whose content is not what they mean, as
    Synapse's event validator does: messages need a string ``body`` and ``msgtype``, names
    and topics are strings in state events, power levels are integers."""

    def strings(*keys: str) -> None:
        for key in keys:
            if not isinstance(content.get(key), str):
                raise bad_json(f"'{key}' must be a string in {event_type}")

    def is_int(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)

    if event_type == "m.room.message":
        strings("body", "msgtype")
    elif event_type in ("m.room.name", "m.room.topic", "m.room.tombstone", "m.room.member"):
        if not is_state:
            raise bad_json(f"{event_type} must be a state event")
        if event_type == "m.room.name":
            strings("name")
        elif event_type == "m.room.topic":
            strings("topic")
    elif event_type == "m.room.power_levels":
        for key in _PL_INTS:
            if key in content and not is_int(content[key]):
                raise bad_json(f"'{key}' must be an integer in m.room.power_levels")
        for key in _PL_MAPS:
            if key in content and not (
                isinstance(content[key], dict) and all(is_int(v) for v in content[key].values())
            ):
                raise bad_json(f"'{key}' must map to integers in m.room.power_levels")
