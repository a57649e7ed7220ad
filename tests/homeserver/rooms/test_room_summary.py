"""``GET /_matrix/client/v1/room_summary/{roomIdOrAlias}`` on one node over real HTTP,
every response validated against the spec's OpenAPI when the run has it."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from tests.homeserver.client import Response, User
from tests.homeserver.conftest import Node
from tests.homeserver.openapi import ValidatingClient
from tests.homeserver.rooms.room_setup import users_with_room
from tests.homeserver.rooms.test_knock import rule

SUMMARY = "GET /_matrix/client/v1/room_summary/{roomIdOrAlias}"


async def summary(user: User, target: str, **params: str) -> Response:
    return await user.request(
        "GET", f"/_matrix/client/v1/room_summary/{quote(target, safe='')}", params=params or None
    )


@pytest.fixture
def client(vclient: ValidatingClient) -> ValidatingClient:
    return vclient  # tests/homeserver/conftest.py: every response checked


async def test_private_rooms_stay_hidden(client: ValidatingClient, node: Node) -> None:
    (alice, bob), secret = await users_with_room(
        client, "alice", "bob", preset="private_chat", name="人事異動", room_alias_name="jinji"
    )
    for target in (secret, f"#jinji:{node.server_name}"):
        r = await summary(bob, target)
        assert (r.status, r.body["errcode"]) == (404, "M_NOT_FOUND"), r
        assert "人事" not in r.body["error"] and secret not in r.body["error"]
    # Unknown rooms and aliases look the same; what is neither is a bad parameter.
    for target in (f"!unknown:{node.server_name}", f"#unknown:{node.server_name}"):
        r = await summary(bob, target)
        assert (r.status, r.body["errcode"]) == (404, "M_NOT_FOUND"), r
    r = await summary(bob, f"!unknown:{node.server_name}", via="elsewhere.invalid")
    assert (r.status, r.body["errcode"]) == (404, "M_NOT_FOUND"), r
    r = await summary(bob, "nothing")
    assert (r.status, r.body["errcode"]) == (400, "M_INVALID_PARAM"), r
    r = await client.request("GET", f"/_matrix/client/v1/room_summary/{quote(secret)}")
    assert r.status == 401, r
    # Invited: bob may see it now.
    await alice.invite(secret, bob.user_id)
    r = await summary(bob, secret)
    assert r.status == 200, r
    assert r.body["name"] == "人事異動" and r.body["membership"] == "invite"
    assert r.body["join_rule"] == "invite"
    client.check(SUMMARY)


async def test_open_rooms(client: ValidatingClient, node: Node) -> None:
    (alice, bob), public = await users_with_room(
        client, "alice", "bob",
        preset="public_chat", name="防災", topic="地域防災計画", room_alias_name="bousai",
        creation_content={"type": "m.space"},
    )  # fmt: skip
    await alice.ok("PUT", f"/_matrix/client/v3/rooms/{quote(public)}/state/m.room.encryption",
                   {"algorithm": "m.megolm.v1.aes-sha2"})  # fmt: skip
    r = await summary(bob, f"#bousai:{node.server_name}")
    assert r.status == 200, r
    assert r.body == {
        "room_id": public, "room_version": "12", "name": "防災", "topic": "地域防災計画",
        "canonical_alias": f"#bousai:{node.server_name}", "num_joined_members": 1,
        "join_rule": "public", "world_readable": False, "guest_can_join": False,
        "room_type": "m.space", "encryption": "m.megolm.v1.aes-sha2", "membership": "leave",
    }  # fmt: skip
    await bob.join(public)
    r = await summary(bob, public)
    assert r.body["membership"] == "join" and r.body["num_joined_members"] == 2
    knock = await alice.create_room(preset="private_chat", initial_state=rule("knock"))
    r = await summary(bob, knock)
    assert (r.status, r.body["join_rule"], r.body["membership"]) == (200, "knock", "leave"), r
    world = [{"type": "m.room.history_visibility", "state_key": "",
              "content": {"history_visibility": "world_readable"}}]  # fmt: skip
    readable = await alice.create_room(preset="private_chat", initial_state=world)
    r = await summary(bob, readable)
    assert r.status == 200 and r.body["world_readable"] is True, r
    # Restricted to members of the public room, which bob is in.
    allow = [{"type": "m.room_membership", "room_id": public}]
    restricted = await alice.create_room(
        preset="private_chat", initial_state=rule("restricted", allow=allow)
    )
    r = await summary(bob, restricted)
    assert r.status == 200 and r.body["join_rule"] == "restricted", r
    assert r.body["allowed_room_ids"] == [public]
    client.check(SUMMARY)
