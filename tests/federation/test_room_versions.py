"""Room versions as data."""

from __future__ import annotations

import dataclasses

import pytest

from federation import room_versions
from federation.errors import UnsupportedRoomVersion


def test_known_versions() -> None:
    assert set(room_versions.KNOWN_ROOM_VERSIONS) == {"10", "11", "12"}
    assert room_versions.DEFAULT_ROOM_VERSION == "12"
    v10, v11, v12 = (room_versions.get(v) for v in ("10", "11", "12"))
    assert (v10.redaction_rules, v11.redaction_rules, v12.redaction_rules) == ("v9", "v11", "v11")
    assert (v10.state_res, v11.state_res, v12.state_res) == ("v2", "v2", "v2.1")
    assert v10.create_has_creator and not v11.create_has_creator
    assert v12.room_id_is_create_hash and not v11.room_id_is_create_hash
    assert v12.creators_have_infinite_power and not v11.creators_have_infinite_power
    assert all(v.integer_power_levels and v.knock_restricted for v in (v10, v11, v12))
    assert room_versions.get(v12) is v12


def test_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        room_versions.get("12").state_res = "v1"  # type: ignore[misc]


@pytest.mark.parametrize("version", ["1", "9", "13", "", "org.example", None, 12])
def test_unknown_versions(version: object) -> None:
    with pytest.raises(UnsupportedRoomVersion, match="unsupported room version"):
        room_versions.get(version)  # type: ignore[arg-type]
