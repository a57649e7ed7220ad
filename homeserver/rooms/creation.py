"""What ``/createRoom`` asks for: its request checked, and the room's first events (the
presets' power levels, join rules and history visibility, the initial state, name and
topic)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from federation import room_versions
from federation.errors import UnsupportedRoomVersion
from federation.identifiers import is_valid_user_id
from homeserver.common.errors import MatrixError, bad_json
from homeserver.rooms.content import check_content

PRESETS = ("private_chat", "public_chat", "trusted_private_chat")

#: The events after the creator's join: (type, state key, content).
InitialEvents = list[tuple[str, str | None, dict[str, Any]]]


@dataclass(frozen=True)
class CreateRequest:
    version: room_versions.RoomVersion
    visibility: str
    preset: str
    creation_content: dict[str, Any]
    invites: list[str]
    initial_state: list[Any]
    #: The local part of the alias to create, if any.
    alias_name: str | None
    is_direct: bool


def parse_create_request(body: dict[str, Any]) -> CreateRequest:
    """The request's room version, visibility, preset, creation content, invites, initial
    state (a list) and alias name, checked in this order."""
    version_id = body.get("room_version", room_versions.DEFAULT_ROOM_VERSION)
    try:
        version = room_versions.get(version_id)
    except UnsupportedRoomVersion:
        raise MatrixError(
            400, "M_UNSUPPORTED_ROOM_VERSION", f"Room version {version_id!r} is not supported"
        ) from None
    visibility = body.get("visibility", "private")
    if visibility not in ("public", "private"):
        raise bad_json("visibility must be 'public' or 'private'")
    preset = body.get("preset")
    if preset is None:
        preset = "public_chat" if visibility == "public" else "private_chat"
    if not isinstance(preset, str) or preset not in PRESETS:  # "" or {} are not presets
        raise bad_json(f"preset must be one of {', '.join(PRESETS)}")
    creation_content = check_content(body.get("creation_content", {}))
    invites = body.get("invite", [])
    if not isinstance(invites, list) or not all(is_valid_user_id(u) for u in invites):
        raise bad_json("invite must be a list of user IDs")
    initial_state = body.get("initial_state", [])
    if not isinstance(initial_state, list):
        raise bad_json("initial_state must be a list")
    alias_name = body.get("room_alias_name")
    if alias_name is not None and (not isinstance(alias_name, str) or not alias_name):
        # The alias it makes is checked whole (is_valid_room_alias) once the server is known.
        raise MatrixError(400, "M_INVALID_PARAM", "Invalid room_alias_name")
    return CreateRequest(
        version, visibility, preset, creation_content, invites, initial_state, alias_name,
        is_direct=body.get("is_direct") is True,
    )  # fmt: skip


def initial_events(
    request: CreateRequest, creator: str, alias: str | None, body: dict[str, Any]
) -> InitialEvents:
    """The events after the creator's join, in order (the power levels first); checks the
    power level override, the initial state entries, the name and the topic."""
    version = request.version
    creators = {creator}
    if version.creators_have_infinite_power:
        extra = request.creation_content.get("additional_creators", [])
        if isinstance(extra, list):
            creators.update(u for u in extra if isinstance(u, str))
    power = power_levels(version, creator, creators, request.preset, request.invites)
    override = body.get("power_level_content_override")
    if override is not None:
        power.update(check_content(override))
    then: InitialEvents = [("m.room.power_levels", "", power)]
    if alias:
        then.append(("m.room.canonical_alias", "", {"alias": alias}))
    join_rule = "public" if request.preset == "public_chat" else "invite"
    preset_state = {
        ("m.room.join_rules", ""): {"join_rule": join_rule},
        ("m.room.history_visibility", ""): {"history_visibility": "shared"},
    }
    if request.preset != "public_chat":
        preset_state[("m.room.guest_access", "")] = {"guest_access": "can_join"}
    for item in request.initial_state:
        if not isinstance(item, dict) or not isinstance(item.get("type"), str):
            raise bad_json("initial_state entries need a type")
        key = (item["type"], item.get("state_key", ""))
        if not isinstance(key[1], str):
            raise bad_json("initial_state state_key must be a string")
        preset_state[key] = check_content(item.get("content", {}))
    then.extend((t, k, c) for (t, k), c in preset_state.items())
    for event_type, key_name, field in (
        ("m.room.name", "name", "name"),
        ("m.room.topic", "topic", "topic"),
    ):
        value = body.get(key_name)
        if value is not None:
            if not isinstance(value, str):
                raise bad_json(f"{key_name} must be a string")
            then.append((event_type, "", {field: value}))
    return then


def power_levels(
    version: room_versions.RoomVersion,
    creator: str,
    creators: set[str],
    preset: str,
    invites: list[str],
) -> dict[str, Any]:
    users: dict[str, int] = {}
    if not version.creators_have_infinite_power:
        users[creator] = 100
    if preset == "trusted_private_chat":
        for invitee in invites:
            if invitee not in creators:
                users[invitee] = 100
    events = {
        "m.room.name": 50,
        "m.room.power_levels": 100,
        "m.room.history_visibility": 100,
        "m.room.canonical_alias": 50,
        "m.room.avatar": 50,
        "m.room.tombstone": 100,
        "m.room.server_acl": 100,
        "m.room.encryption": 100,
    }
    if version.creators_have_infinite_power:
        events["m.room.tombstone"] = 150
    return {
        "users": users,
        "users_default": 0,
        "events": events,
        "events_default": 0,
        "state_default": 50,
        "ban": 50,
        "kick": 50,
        "redact": 50,
        "invite": 50 if preset == "public_chat" else 0,
        "notifications": {"room": 50},
    }
