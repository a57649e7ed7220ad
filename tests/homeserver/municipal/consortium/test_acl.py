"""The binding's content and the server ACL of a bound room (pure), and the schema in
spec/events/ agreeing with the code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from homeserver.federation.verify import server_allowed
from homeserver.municipal.consortium import acl, document
from tests.homeserver.municipal.consortium.docs import first_version, key, next_version

SPEC = Path(__file__).parents[4] / "spec" / "events"

GOOD: list[dict[str, Any]] = [
    {},
    {"id": "kanto"},
    {"id": "kanto-2026.lgwan_x", "body": "関東の参加団体で共有"},
    {"id": "a" * 64},
]
BAD: list[dict[str, Any]] = [
    {"id": "Kanto"},
    {"id": ""},
    {"id": "-kanto"},
    {"id": "a" * 65},
    {"id": 5},
    {"id": None},
    {"body": "no id"},
    {"id": "kanto", "body": 1},
    {"id": "kanto", "extra": True},
]


@pytest.mark.parametrize("content", GOOD)
def test_well_formed_bindings(content: dict[str, Any]) -> None:
    schema = json.loads((SPEC / "jp.kairan.consortium.schema.json").read_text("utf-8"))
    jsonschema.validate(content, schema)
    assert acl.binding_problem(content) is None
    assert acl.bound_id(content) == content.get("id")


@pytest.mark.parametrize("content", BAD)
def test_malformed_bindings_bind_nothing(content: dict[str, Any]) -> None:
    schema = json.loads((SPEC / "jp.kairan.consortium.schema.json").read_text("utf-8"))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(content, schema)
    assert acl.binding_problem(content) is not None
    assert acl.bound_id(content) is None


def test_the_acl_allows_the_members_and_the_node_itself() -> None:
    doc = document.parse(
        first_version({"a.city.example.jp": key("a"), "b.town.example.jp:8448": key("b")})
    )
    wanted = acl.wanted_acl(doc, "own.example.jp:8448")
    assert wanted == {
        "allow": ["a.city.example.jp", "b.town.example.jp", "own.example.jp"],
        "deny": [],
        "allow_ip_literals": False,
        "jp.kairan.consortium": {"id": "kanto", "version": 1},
    }
    record = json.loads(
        (SPEC / "m.room.server_acl.jp.kairan.consortium.schema.json").read_text("utf-8")
    )
    jsonschema.validate(wanted["jp.kairan.consortium"], record)
    # As the node's ACL check reads it: hosts match whatever the port; others are out.
    assert server_allowed(wanted, "b.town.example.jp:8448")
    assert server_allowed(wanted, "own.example.jp")
    assert not server_allowed(wanted, "evil.example.jp")
    assert not server_allowed(wanted, "127.0.0.9:8448")


def test_ip_literal_members_are_allowed_by_host() -> None:
    doc = document.parse(first_version({"127.0.0.2:8448": key("a"), "[::1]:8448": key("b")}))
    wanted = acl.wanted_acl(doc, "127.0.0.3:9000")
    assert wanted["allow"] == ["127.0.0.2", "127.0.0.3", "[::1]"]
    assert wanted["allow_ip_literals"] is True
    assert server_allowed(wanted, "127.0.0.2:1234")
    assert not server_allowed(wanted, "127.0.0.4:8448")


def test_same_effect_and_the_record_of_newer_versions() -> None:
    v1_json = first_version({"a.example.jp": key("a")})
    v1 = document.parse(v1_json)
    v2 = document.parse(next_version(v1_json))  # the same members
    wanted_v1 = acl.wanted_acl(v1, "own.example.jp")
    assert acl.same_effect(wanted_v1, acl.wanted_acl(v2, "own.example.jp"))
    assert not acl.same_effect(None, wanted_v1)
    assert not acl.same_effect({}, wanted_v1)
    assert not acl.same_effect({**wanted_v1, "deny": ["*"]}, wanted_v1)
    assert not acl.same_effect({**wanted_v1, "allow_ip_literals": True}, wanted_v1)
    # The ACL says it came from version 2: a node holding version 1 leaves it.
    made_by_v2 = acl.wanted_acl(v2, "own.example.jp")
    assert acl.recorded_newer(made_by_v2, v1)
    assert not acl.recorded_newer(made_by_v2, v2)
    assert not acl.recorded_newer(wanted_v1, v2)
    assert not acl.recorded_newer({"jp.kairan.consortium": {"id": "tohoku", "version": 9}}, v1)
    assert not acl.recorded_newer({"jp.kairan.consortium": {"id": "kanto", "version": True}}, v1)
    assert not acl.recorded_newer({"jp.kairan.consortium": "kanto"}, v1)
