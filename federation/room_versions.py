"""Room versions as data.

Each supported version is a frozen :class:`RoomVersion` of rule flags; code that
depends on a version asks a flag, never compares version strings.  Version 11 is
version 10 with a few flags changed, version 12 is 11 with a few more.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from federation.errors import UnsupportedRoomVersion

_VERSION_GRAMMAR = re.compile(r"[a-z0-9.\-]{1,32}")


def is_valid_room_version_id(version: str) -> bool:
    """Room version grammar: 1 to 32 characters of ``[a-z0-9.-]``."""
    return bool(_VERSION_GRAMMAR.fullmatch(version))


@dataclass(frozen=True)
class RoomVersion:
    identifier: str
    #: "v9" keeps top-level ``origin``/``membership``/``prev_state`` (rooms 9, 10);
    #: "v11" is MSC2176/MSC3821/MSC3989 (rooms 11+).
    redaction_rules: str
    #: "v2" (rooms 2-11) or "v2.1" (room 12, MSC4297).
    state_res: str
    #: ``m.room.create`` content carries ``creator`` (rooms 1-10); from 11 the sender is the creator.
    create_has_creator: bool
    #: ``redacts`` of ``m.room.redaction`` is in ``content`` (rooms 11+), else top-level.
    redacts_in_content: bool
    #: The room ID is ``!`` + the create event's reference hash, and the create event has
    #: no ``room_id`` and is not listed in ``auth_events`` (MSC4291, room 12).
    room_id_is_create_hash: bool
    #: Creators (sender + ``additional_creators``) have infinite power (MSC4289, room 12).
    creators_have_infinite_power: bool
    #: Power level values must be integers, not strings (MSC3667, rooms 10+).
    integer_power_levels: bool = True
    #: ``knock`` join rule (MSC2403, rooms 7+).
    knock: bool = True
    #: ``restricted`` join rule (MSC3083, rooms 8+).
    restricted: bool = True
    #: ``knock_restricted`` join rule (MSC3787, rooms 10+).
    knock_restricted: bool = True
    #: Power levels ``notifications`` is enforced in auth (rooms 6+).
    limit_notifications_power_levels: bool = True
    #: Canonical JSON integer range enforced (rooms 6+).
    strict_canonical_json: bool = True

    @property
    def uses_v11_redaction(self) -> bool:
        return self.redaction_rules == "v11"

    @property
    def uses_state_res_v2_1(self) -> bool:
        return self.state_res == "v2.1"


V10 = RoomVersion(
    identifier="10",
    redaction_rules="v9",
    state_res="v2",
    create_has_creator=True,
    redacts_in_content=False,
    room_id_is_create_hash=False,
    creators_have_infinite_power=False,
)
V11 = replace(
    V10,
    identifier="11",
    redaction_rules="v11",
    create_has_creator=False,
    redacts_in_content=True,
)
V12 = replace(
    V11,
    identifier="12",
    state_res="v2.1",
    room_id_is_create_hash=True,
    creators_have_infinite_power=True,
)

KNOWN_ROOM_VERSIONS: dict[str, RoomVersion] = {v.identifier: v for v in (V10, V11, V12)}

#: The version new rooms get unless the caller asks otherwise.
DEFAULT_ROOM_VERSION = "12"


def get(version: str | RoomVersion) -> RoomVersion:
    """The rules of ``version``; raises :class:`UnsupportedRoomVersion` for any other."""
    if isinstance(version, RoomVersion):
        return version
    try:
        return KNOWN_ROOM_VERSIONS[version]
    except (KeyError, TypeError):
        raise UnsupportedRoomVersion(version) from None
