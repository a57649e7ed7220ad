"""A consortium user group's rooms: the names it takes and the ``/createRoom`` bodies of
its space and themed rooms.  Pure (no I/O).  spec/consortium.md, "User groups"."""

from __future__ import annotations

import unicodedata
from typing import Any

#: The state event binding a room to a consortium (its server ACL follows the members).
BINDING = "jp.kairan.consortium"
SPACE_CHILD = "m.space.child"
SPACE_PARENT = "m.space.parent"
MAX_NAME = 100
MAX_TOPIC = 500
MAX_ROOMS = 50


class GroupError(ValueError):
    """A group's name, topic or rooms are not acceptable; the message is one line."""


def check_name(value: Any, what: str = "name") -> str:
    """A group's or a themed room's name: 1-100 characters, not only spaces, no control
    characters (it is shown in every member's room list)."""
    if not isinstance(value, str) or not value.strip():
        raise GroupError(f"{what} must be a non-empty string")
    if len(value) > MAX_NAME:
        raise GroupError(f"{what} is longer than {MAX_NAME} characters")
    if any(unicodedata.category(c) == "Cc" for c in value):
        raise GroupError(f"{what} must not contain control characters")
    return value.strip()


def check_topic(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_TOPIC:
        raise GroupError(f"topic must be a string of at most {MAX_TOPIC} characters")
    if any(unicodedata.category(c) == "Cc" and c != "\n" for c in value):
        raise GroupError("topic must not contain control characters")
    return value


def check_rooms(value: Any) -> list[str]:
    """The themed rooms' names: a list of at most 50 distinct names."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise GroupError("rooms must be a list of names")
    if len(value) > MAX_ROOMS:
        raise GroupError(f"at most {MAX_ROOMS} rooms")
    names = [check_name(v, "a room name") for v in value]
    if len(set(names)) != len(names):
        raise GroupError("room names must differ")
    return names


def default_topic(consortium_name: str, consortium_id: str) -> str:
    return f"{consortium_name}（{consortium_id}）のユーザーグループ"


def space_body(consortium_id: str, name: str, topic: str) -> dict[str, Any]:
    """The group's space: public (listed in the directory, joinable by anyone the node
    federates with: with ``federation.closed`` the consortium's members), bound to the
    consortium; only its admins post or add rooms (events 100, as Element's spaces)."""
    return {
        "name": name,
        "topic": topic,
        "visibility": "public",
        "preset": "public_chat",
        "creation_content": {"type": "m.space"},
        "power_level_content_override": {"events_default": 100},
        "initial_state": [binding(consortium_id)],
    }


def themed_room_body(
    consortium_id: str, space_id: str, server_name: str, name: str
) -> dict[str, Any]:
    """A themed room: joinable by the space's members (join rule ``restricted``), a child
    of the space that names it as its canonical parent, kept out of the directory (found
    through the space's hierarchy)."""
    return {
        "name": name,
        "visibility": "private",
        "preset": "public_chat",
        "initial_state": [
            {
                "type": "m.room.join_rules",
                "state_key": "",
                "content": {
                    "join_rule": "restricted",
                    "allow": [{"type": "m.room_membership", "room_id": space_id}],
                },
            },
            {
                "type": SPACE_PARENT,
                "state_key": space_id,
                "content": {"via": [server_name], "canonical": True},
            },
            binding(consortium_id),
        ],
    }


def child_content(server_name: str) -> dict[str, Any]:
    """The space's ``m.space.child`` for a themed room (suggested: clients offer it)."""
    return {"via": [server_name], "suggested": True}


def binding(consortium_id: str) -> dict[str, Any]:
    return {"type": BINDING, "state_key": "", "content": {"id": consortium_id}}
