"""Knocking on one node over real HTTP (``POST /knock/{roomIdOrAlias}``), every response
validated against the spec's OpenAPI when the run has it."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from tests.homeserver.client import User
from tests.homeserver.conftest import Node
from tests.homeserver.openapi import ValidatingClient
from tests.homeserver.rooms.room_setup import users_with_room

V3 = "/_matrix/client/v3"
KNOCK = "POST /_matrix/client/v3/knock/{roomIdOrAlias}"


def rule(join_rule: str, **extra: Any) -> list[dict[str, Any]]:
    content = {"join_rule": join_rule, **extra}
    return [{"type": "m.room.join_rules", "state_key": "", "content": content}]


async def knock(user: User, target: str, body: Any = None, **params: str) -> tuple[int, Any]:
    response = await user.request(
        "POST", f"{V3}/knock/{quote(target, safe='')}", body or {}, params=params or None
    )
    return response.status, response.body


@pytest.fixture
def client(vclient: ValidatingClient) -> ValidatingClient:
    return vclient  # tests/homeserver/conftest.py: every response checked


async def test_refused_knocks(client: ValidatingClient, node: Node) -> None:
    (alice, bob, eve), invite_only = await users_with_room(
        client, "alice", "bob", "eve", preset="private_chat"
    )
    public = await alice.create_room(preset="public_chat")
    knockable = await alice.create_room(preset="private_chat", initial_state=rule("knock"))
    for room in (invite_only, public):
        status, body = await knock(eve, room)
        assert (status, body["errcode"]) == (403, "M_FORBIDDEN"), (room, body)
    # Banned, or already joined.
    await alice.ok("POST", f"{V3}/rooms/{quote(knockable)}/ban", {"user_id": eve.user_id})
    status, body = await knock(eve, knockable)
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN"), body
    status, body = await knock(alice, knockable)
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN"), body
    # Unknown rooms and aliases, and what is neither.
    status, body = await knock(bob, f"#nowhere:{node.server_name}")
    assert (status, body["errcode"]) == (404, "M_NOT_FOUND"), body
    status, body = await knock(bob, "nothing")
    assert (status, body["errcode"]) == (400, "M_INVALID_PARAM"), body
    status, body = await knock(bob, knockable, {"reason": 5})
    assert status == 400, body
    r = await client.request("POST", f"{V3}/knock/{quote(knockable)}", {})
    assert (r.status, r.body["errcode"]) == (401, "M_MISSING_TOKEN"), r
    sync = await eve.sync()
    assert sync["rooms"].get("knock", {}) == {}
    client.check(KNOCK)


async def test_knock_then_invite(client: ValidatingClient) -> None:
    (alice, bob), room = await users_with_room(
        client, "alice", "bob",
        preset="private_chat", name="相談", room_alias_name="soudan", initial_state=rule("knock"),
    )  # fmt: skip
    status, body = await knock(bob, "#soudan:" + alice.user_id.split(":", 1)[1],
                               {"reason": "入れてください"})  # fmt: skip
    assert (status, body) == (200, {"room_id": room})
    member = await alice.ok("GET", f"{V3}/rooms/{quote(room)}/state/m.room.member/{bob.user_id}")
    assert member["membership"] == "knock" and member["reason"] == "入れてください"
    sync = await bob.sync()
    events = sync["rooms"]["knock"][room]["knock_state"]["events"]
    by_type = {e["type"]: e for e in events}
    assert by_type["m.room.name"]["content"] == {"name": "相談"}
    assert by_type["m.room.join_rules"]["content"]["join_rule"] == "knock"
    assert by_type["m.room.member"]["content"]["membership"] == "knock"
    # Knocking again is allowed (the reason changes); then alice lets bob in.
    status, _ = await knock(bob, room)
    assert status == 200
    await alice.invite(room, bob.user_id)
    await bob.join(room)
    assert room in (await bob.ok("GET", f"{V3}/joined_rooms"))["joined_rooms"]
    client.check(KNOCK)


async def test_knock_restricted(client: ValidatingClient) -> None:
    (alice, bob), space = await users_with_room(client, "alice", "bob", preset="private_chat")
    allow = [{"type": "m.room_membership", "room_id": space}]
    room = await alice.create_room(
        preset="private_chat",
        room_version="10",
        initial_state=rule("knock_restricted", allow=allow),
    )
    status, body = await knock(bob, room)
    assert (status, body) == (200, {"room_id": room})
    sync = await bob.sync()
    assert room in sync["rooms"]["knock"]
    client.check(KNOCK)
