"""The pure rules of a group: names, and the /createRoom bodies of its space and rooms."""

from __future__ import annotations

import pytest

from homeserver.municipal.groups import rules
from homeserver.municipal.groups.rules import GroupError


def test_names() -> None:
    assert rules.check_name(" 災害対応 ") == "災害対応"
    assert rules.check_name("x" * 100) == "x" * 100
    for bad in ("", "  ", "x" * 101, "a\nb", "a\x00b", None, 3, ["a"]):
        with pytest.raises(GroupError):
            rules.check_name(bad)
    assert rules.check_rooms(None) == []
    assert rules.check_rooms(["災害対応", "行政DX"]) == ["災害対応", "行政DX"]
    for bad_rooms in ("災害対応", ["a", " a"], ["r"] * 51, [""]):
        with pytest.raises(GroupError):
            rules.check_rooms(bad_rooms)
    assert rules.check_topic("一行目\n二行目") == "一行目\n二行目"
    with pytest.raises(GroupError):
        rules.check_topic("t\x07")


def test_bodies_bind_to_the_consortium_and_restrict_to_the_space() -> None:
    space = rules.space_body("kanto", "防災連絡会", "topic")
    assert space["creation_content"] == {"type": "m.space"}
    assert (space["visibility"], space["preset"]) == ("public", "public_chat")
    assert rules.binding("kanto") in space["initial_state"]
    room = rules.themed_room_body("kanto", "!space:n", "n", "災害対応")
    state = {(e["type"], e["state_key"]): e["content"] for e in room["initial_state"]}
    assert state[("m.room.join_rules", "")] == {
        "join_rule": "restricted",
        "allow": [{"type": "m.room_membership", "room_id": "!space:n"}],
    }
    assert state[("m.space.parent", "!space:n")] == {"via": ["n"], "canonical": True}
    assert state[("jp.kairan.consortium", "")] == {"id": "kanto"}
    assert room["visibility"] == "private"
