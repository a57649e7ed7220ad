"""Push rules over real HTTP: the spec's default rule set, user rules and their order,
enabled/actions on user and default rules, m.push_rules in /sync, and bad requests.
Responses are checked against the spec's OpenAPI."""

from __future__ import annotations

from typing import Any

from tests.homeserver.client import User
from tests.homeserver.conftest import Node
from tests.homeserver.keyhelpers import (
    V3,
)
from tests.homeserver.openapi import ValidatingClient

P = f"{V3}/pushrules"
DEFAULT_OVERRIDE = [
    ".m.rule.master",
    ".m.rule.suppress_notices",
    ".m.rule.invite_for_me",
    ".m.rule.member_event",
    ".m.rule.is_user_mention",
    ".m.rule.is_room_mention",
    ".m.rule.tombstone",
    ".m.rule.reaction",
    ".m.rule.room.server_acl",
    ".m.rule.suppress_edits",
]
DEFAULT_UNDERRIDE = [
    ".m.rule.call",
    ".m.rule.encrypted_room_one_to_one",
    ".m.rule.room_one_to_one",
    ".m.rule.message",
    ".m.rule.encrypted",
]


def ids(rules: list[dict[str, Any]]) -> list[str]:
    return [r["rule_id"] for r in rules]


async def rules(user: User) -> dict[str, Any]:
    body: dict[str, Any] = await user.ok("GET", f"{P}/")
    return dict(body["global"])


async def test_default_rule_set(node: Node, vclient: ValidatingClient) -> None:
    alice = await vclient.register("alice")
    body = await alice.ok("GET", f"{P}/")
    assert set(body) == {"global"}
    default = body["global"]
    assert set(default) == {"override", "content", "room", "sender", "underride"}
    assert ids(default["override"]) == DEFAULT_OVERRIDE
    assert ids(default["underride"]) == DEFAULT_UNDERRIDE
    assert default["content"] == default["room"] == default["sender"] == []
    for rule in default["override"] + default["underride"]:
        assert rule["default"] is True
        assert rule["enabled"] is (rule["rule_id"] != ".m.rule.master")
        assert isinstance(rule["actions"], list) and isinstance(rule["conditions"], list)
    by_id = {r["rule_id"]: r for r in default["override"] + default["underride"]}
    assert by_id[".m.rule.master"] == {
        "rule_id": ".m.rule.master",
        "default": True,
        "enabled": False,
        "conditions": [],
        "actions": [],
    }
    # The user's own ID is filled in where the spec says "[the user's Matrix ID]".
    invite = by_id[".m.rule.invite_for_me"]["conditions"]
    assert {"kind": "event_match", "key": "state_key", "pattern": alice.user_id} in invite
    mention = by_id[".m.rule.is_user_mention"]
    assert mention["conditions"] == [
        {
            "kind": "event_property_contains",
            "key": "content.m\\.mentions.user_ids",
            "value": alice.user_id,
        }
    ]
    assert {"set_tweak": "highlight"} in mention["actions"]
    assert by_id[".m.rule.encrypted_room_one_to_one"]["conditions"][0] == {
        "kind": "room_member_count",
        "is": "2",
    }
    # The legacy body-matching rules are gone since v1.17.
    assert ".m.rule.contains_display_name" not in by_id
    assert ".m.rule.roomnotif" not in by_id

    assert (await alice.ok("GET", f"{P}/global/"))["override"] == default["override"]
    master = await alice.ok("GET", f"{P}/global/override/.m.rule.master")
    assert master == by_id[".m.rule.master"]

    # An initial sync carries the rules as m.push_rules account data.
    synced = await alice.sync()
    pushed = [e for e in synced["account_data"]["events"] if e["type"] == "m.push_rules"]
    assert pushed == [{"type": "m.push_rules", "content": body}]
    vclient.check("GET /_matrix/client/v3/pushrules/", "GET /_matrix/client/v3/pushrules/global/")


async def test_user_rule_round_trip(node: Node, vclient: ValidatingClient) -> None:
    alice = await vclient.register("alice")
    since = (await alice.sync())["next_batch"]
    rule_path = f"{P}/global/override/drill"
    conditions = [{"kind": "event_match", "key": "content.body", "pattern": "*訓練*"}]
    actions: list[Any] = ["notify", {"set_tweak": "sound", "value": "default"}]
    await alice.ok("PUT", rule_path, {"conditions": conditions, "actions": actions})
    rule = await alice.ok("GET", rule_path)
    assert rule == {
        "rule_id": "drill",
        "default": False,
        "enabled": True,
        "conditions": conditions,
        "actions": actions,
    }
    # User override rules come after the master rule and before the other defaults.
    assert ids((await rules(alice))["override"])[:3] == [
        ".m.rule.master",
        "drill",
        ".m.rule.suppress_notices",
    ]
    # The change reaches the user's clients as m.push_rules account data.
    changed = await alice.sync(since=since)
    events = [e for e in changed["account_data"]["events"] if e["type"] == "m.push_rules"]
    assert ids(events[0]["content"]["global"]["override"])[1] == "drill"

    # Ordering: a new rule goes first; before/after place it relative to a user rule.
    await alice.ok("PUT", f"{P}/global/override/first", {"conditions": [], "actions": []})
    await alice.ok("PUT", f"{P}/global/override/last", {"actions": []}, params={"after": "drill"})
    await alice.ok(
        "PUT", f"{P}/global/override/middle", {"actions": []}, params={"before": "drill"}
    )
    user_rules = [r for r in ids((await rules(alice))["override"]) if not r.startswith(".")]
    assert user_rules == ["first", "middle", "drill", "last"]

    # enabled and actions.
    assert await alice.ok("GET", rule_path + "/enabled") == {"enabled": True}
    await alice.ok("PUT", rule_path + "/enabled", {"enabled": False})
    assert await alice.ok("GET", rule_path + "/enabled") == {"enabled": False}
    await alice.ok("PUT", rule_path + "/actions", {"actions": ["dont_notify"]})
    assert await alice.ok("GET", rule_path + "/actions") == {"actions": ["dont_notify"]}
    # Updating the rule in place keeps its position and its enabled flag.
    await alice.ok("PUT", rule_path, {"conditions": [], "actions": ["notify"]})
    updated = await alice.ok("GET", rule_path)
    assert updated["enabled"] is False and updated["actions"] == ["notify"]
    user_rules = [r for r in ids((await rules(alice))["override"]) if not r.startswith(".")]
    assert user_rules == ["first", "middle", "drill", "last"]

    # Content, room and sender rules.
    await alice.ok("PUT", f"{P}/global/content/kaigi", {"pattern": "会議", "actions": ["notify"]})
    room_id = await alice.create_room()
    await alice.ok("PUT", f"{P}/global/room/{room_id}", {"actions": []})
    await alice.ok("PUT", f"{P}/global/sender/@boss:example.org", {"actions": ["notify"]})
    current = await rules(alice)
    assert current["content"][0]["pattern"] == "会議"
    assert ids(current["room"]) == [room_id]
    assert ids(current["sender"]) == ["@boss:example.org"]

    await alice.ok("DELETE", rule_path)
    missing = await alice.request("GET", rule_path)
    assert missing.status == 404 and missing.body["errcode"] == "M_NOT_FOUND"
    gone = await alice.request("DELETE", rule_path)
    assert gone.status == 404 and gone.body["errcode"] == "M_NOT_FOUND"
    # Rules are per user.
    bob = await vclient.register("bob")
    assert [r for r in ids((await rules(bob))["override"]) if not r.startswith(".")] == []
    vclient.check(
        "PUT /_matrix/client/v3/pushrules/global/{kind}/{ruleId}",
        "GET /_matrix/client/v3/pushrules/global/{kind}/{ruleId}",
        "DELETE /_matrix/client/v3/pushrules/global/{kind}/{ruleId}",
        "GET /_matrix/client/v3/pushrules/global/{kind}/{ruleId}/enabled",
        "PUT /_matrix/client/v3/pushrules/global/{kind}/{ruleId}/enabled",
        "GET /_matrix/client/v3/pushrules/global/{kind}/{ruleId}/actions",
        "PUT /_matrix/client/v3/pushrules/global/{kind}/{ruleId}/actions",
    )


async def test_default_rules_can_be_switched_not_replaced(
    node: Node, vclient: ValidatingClient
) -> None:
    alice = await vclient.register("alice")
    await alice.ok("PUT", f"{P}/global/override/.m.rule.master/enabled", {"enabled": True})
    await alice.ok("PUT", f"{P}/global/underride/.m.rule.message/actions", {"actions": []})
    current = await rules(alice)
    assert current["override"][0]["enabled"] is True
    message = next(r for r in current["underride"] if r["rule_id"] == ".m.rule.message")
    assert message["actions"] == [] and message["default"] is True
    for method, path, body in [
        ("PUT", f"{P}/global/override/.m.rule.mine", {"actions": []}),
        ("DELETE", f"{P}/global/override/.m.rule.master", None),
        ("DELETE", f"{P}/global/underride/.m.rule.message", None),
    ]:
        response = await alice.request(method, path, body)
        assert response.status == 400 and response.body["errcode"] == "M_INVALID_PARAM", path
    # A default rule is found only under its own kind.
    wrong_kind = await alice.request("GET", f"{P}/global/underride/.m.rule.master")
    assert wrong_kind.status == 404
    wrong_kind = await alice.request(
        "PUT", f"{P}/global/content/.m.rule.master/enabled", {"enabled": False}
    )
    assert wrong_kind.status == 404 and wrong_kind.body["errcode"] == "M_NOT_FOUND"
    assert not vclient.mismatches, vclient.mismatches


async def test_bad_push_rule_requests(node: Node, vclient: ValidatingClient) -> None:
    alice = await vclient.register("alice")
    await alice.ok("PUT", f"{P}/global/override/exists", {"actions": []})
    cases: list[tuple[str, str, Any, dict[str, str] | None, int, str]] = [
        ("PUT", "global/nonsense/x", {"actions": []}, None, 400, "M_INVALID_PARAM"),
        ("GET", "global/nonsense/x", None, None, 400, "M_INVALID_PARAM"),
        ("PUT", "device/override/x", {"actions": []}, None, 400, "M_INVALID_PARAM"),
        ("PUT", "global/override/x", {}, None, 400, "M_MISSING_PARAM"),
        ("PUT", "global/override/x", {"actions": "notify"}, None, 400, "M_BAD_JSON"),
        ("PUT", "global/override/x", {"actions": ["shout"]}, None, 400, "M_INVALID_PARAM"),
        ("PUT", "global/override/x", {"actions": [1]}, None, 400, "M_BAD_JSON"),
        ("PUT", "global/override/x", {"actions": [{"value": 1}]}, None, 400, "M_INVALID_PARAM"),
        ("PUT", "global/override/x", {"actions": [], "conditions": {}}, None, 400, "M_BAD_JSON"),
        ("PUT", "global/override/x", {"actions": [], "conditions": [1]}, None, 400, "M_BAD_JSON"),
        ("PUT", "global/content/x", {"actions": []}, None, 400, "M_MISSING_PARAM"),
        ("PUT", "global/content/x", {"actions": [], "pattern": 3}, None, 400, "M_BAD_JSON"),
        ("PUT", "global/override/x", {"actions": []}, {"before": "nope"}, 400, "M_UNKNOWN"),
        (
            "PUT",
            "global/override/x",
            {"actions": []},
            {"after": ".m.rule.master"},
            400,
            "M_INVALID_PARAM",
        ),
        ("PUT", "global/override/exists/enabled", {"enabled": "yes"}, None, 400, "M_BAD_JSON"),
        ("PUT", "global/override/exists/enabled", {}, None, 400, "M_MISSING_PARAM"),
        ("PUT", "global/override/exists/actions", {"actions": 5}, None, 400, "M_BAD_JSON"),
        ("GET", "global/override/nope", None, None, 404, "M_NOT_FOUND"),
        ("GET", "global/override/nope/enabled", None, None, 404, "M_NOT_FOUND"),
        ("PUT", "global/override/nope/actions", {"actions": []}, None, 404, "M_NOT_FOUND"),
    ]
    for method, rest, body, params, status, errcode in cases:
        response = await alice.request(method, f"{P}/{rest}", body, params=params)
        assert (response.status, response.body["errcode"]) == (status, errcode), (method, rest)
    not_json = await alice.request(
        "PUT",
        f"{P}/global/override/x",
        data=b"[",
        headers={"Content-Type": "application/json"},
    )
    assert not_json.status == 400 and not_json.body["errcode"] == "M_NOT_JSON"
    # None of the refused requests changed anything.
    user_rules = [r for r in ids((await rules(alice))["override"]) if not r.startswith(".")]
    assert user_rules == ["exists"]
    assert (await vclient.request("GET", f"{P}/")).status == 401
