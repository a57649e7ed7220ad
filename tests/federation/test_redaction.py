"""Redaction per room version."""

from __future__ import annotations

from typing import Any

import pytest

from federation.redaction import redact

BASE: dict[str, Any] = {
    "event_id": "$e", "type": "x", "room_id": "!r:s", "sender": "@u:s", "state_key": "",
    "hashes": {"sha256": "h"}, "signatures": {"s": {}}, "depth": 1, "prev_events": [],
    "auth_events": [], "origin_server_ts": 1, "origin": "s", "membership": "join",
    "prev_state": [], "unsigned": {"age": 1}, "extra": True,
}  # fmt: skip
V11_TOP = {
    "event_id", "type", "room_id", "sender", "state_key", "content", "hashes", "signatures",
    "depth", "prev_events", "auth_events", "origin_server_ts",
}  # fmt: skip


def event(event_type: str, content: dict[str, Any]) -> dict[str, Any]:
    return {**BASE, "type": event_type, "content": content}


def test_top_level_keys() -> None:
    assert set(redact(event("x", {"a": 1}), "10")) == V11_TOP | {
        "origin",
        "membership",
        "prev_state",
    }
    for version in ("11", "12"):
        assert set(redact(event("x", {"a": 1}), version)) == V11_TOP


CASES: list[tuple[str, dict[str, Any], dict[str, Any], dict[str, Any]]] = [
    # type, content, kept in room 10, kept in rooms 11/12
    ("m.room.message", {"body": "x"}, {}, {}),
    (
        "m.room.member",
        {"membership": "join", "displayname": "d", "join_authorised_via_users_server": "@a:s",
         "third_party_invite": {"signed": {"token": "t"}, "display_name": "x"}},
        {"membership": "join", "join_authorised_via_users_server": "@a:s"},
        {"membership": "join", "join_authorised_via_users_server": "@a:s",
         "third_party_invite": {"signed": {"token": "t"}}},
    ),
    (
        "m.room.create",
        {"creator": "@a:s", "room_version": "10", "m.federate": False},
        {"creator": "@a:s"},
        {"creator": "@a:s", "room_version": "10", "m.federate": False},
    ),
    ("m.room.join_rules", {"join_rule": "restricted", "allow": [], "x": 1},
     {"join_rule": "restricted", "allow": []}, {"join_rule": "restricted", "allow": []}),
    (
        "m.room.power_levels",
        {"ban": 1, "events": {}, "events_default": 0, "invite": 0, "kick": 1, "redact": 1,
         "state_default": 1, "users": {}, "users_default": 0, "notifications": {"room": 1}},
        {"ban": 1, "events": {}, "events_default": 0, "kick": 1, "redact": 1,
         "state_default": 1, "users": {}, "users_default": 0},
        {"ban": 1, "events": {}, "events_default": 0, "invite": 0, "kick": 1, "redact": 1,
         "state_default": 1, "users": {}, "users_default": 0},
    ),
    ("m.room.history_visibility", {"history_visibility": "shared", "x": 1},
     {"history_visibility": "shared"}, {"history_visibility": "shared"}),
    ("m.room.redaction", {"redacts": "$x", "reason": "r"}, {}, {"redacts": "$x"}),
    ("m.room.aliases", {"aliases": ["#a:s"]}, {}, {}),
]  # fmt: skip


@pytest.mark.parametrize(("event_type", "content", "kept10", "kept11"), CASES)
def test_content(event_type: str, content: dict[str, Any], kept10: Any, kept11: Any) -> None:
    assert redact(event(event_type, content), "10")["content"] == kept10
    assert redact(event(event_type, content), "11")["content"] == kept11
    assert redact(event(event_type, content), "12")["content"] == kept11


def test_member_third_party_invite_without_signed() -> None:
    pdu = event("m.room.member", {"membership": "invite", "third_party_invite": {"x": 1}})
    # As Synapse does: the object stays, emptied (the oracle found this).
    assert redact(pdu, "11")["content"] == {"membership": "invite", "third_party_invite": {}}
    assert redact(pdu, "10")["content"] == {"membership": "invite"}


def test_malformed_content_and_idempotence() -> None:
    pdu = {**event("m.room.member", {}), "content": "nope"}
    assert redact(pdu, "12")["content"] == {}
    once = redact(event("m.room.power_levels", {"ban": 5, "x": 1}), "11")
    assert redact(once, "11") == once
    assert "content" in redact({"type": "x"}, "10")
