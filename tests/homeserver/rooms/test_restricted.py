"""Restricted rooms on one node (spec Client-Server "Restricted rooms", auth rule 4.3.5):
a member of an allowed room joins without an invite, the join naming a local user who may
invite; anyone else is refused; ``knock_restricted`` the same (knocking by the others is
tested over federation: this node has no client ``/knock`` yet). Over HTTP, on both
databases."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from tests.homeserver.client import Client, User

V3 = "/_matrix/client/v3"
AUTHORISER = "join_authorised_via_users_server"


def rule(join_rule: str, *allowed: str) -> dict[str, Any]:
    return {
        "join_rule": join_rule,
        "allow": [{"type": "m.room_membership", "room_id": r} for r in allowed],
    }


async def restricted_room(user: User, join_rule: str, *allowed: str, **body: Any) -> str:
    state = [{"type": "m.room.join_rules", "state_key": "", "content": rule(join_rule, *allowed)}]
    return await user.create_room(preset="private_chat", initial_state=state, **body)


async def member(user: User, room_id: str, target: str) -> dict[str, Any]:
    path = f"{V3}/rooms/{quote(room_id, safe='')}/state/m.room.member/{quote(target, safe='')}"
    content: dict[str, Any] = await user.ok("GET", path)
    return content


async def join(user: User, room_id: str) -> tuple[int, Any]:
    response = await user.request("POST", f"{V3}/join/{quote(room_id, safe='')}", {})
    return response.status, response.body


@pytest.mark.parametrize("join_rule", ["restricted", "knock_restricted"])
async def test_member_of_allowed_room_joins_authorised_by_local_inviter(
    client: Client, join_rule: str
) -> None:
    alice, bob, carol = [await client.register(n) for n in ("alice", "bob", "carol")]
    space = await alice.create_room(preset="public_chat", creation_content={"type": "m.space"})
    room = await restricted_room(alice, join_rule, space)
    await bob.join(space)

    # bob is in the space: he joins, and alice (the one who may invite) vouches for him.
    status, body = await join(bob, room)
    assert status == 200, body
    assert body == {"room_id": room}
    joined = await member(alice, room, bob.user_id)
    assert joined["membership"] == "join"
    assert joined[AUTHORISER] == alice.user_id

    # carol is in no allowed room: refused, and nothing is stored for her.
    status, body = await join(carol, room)
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
    path = f"{V3}/rooms/{quote(room, safe='')}/state/m.room.member/{quote(carol.user_id)}"
    assert (await alice.request("GET", path)).status == 404


async def test_invited_user_needs_no_authoriser(client: Client) -> None:
    alice, carol = await client.register("alice"), await client.register("carol")
    space = await alice.create_room(preset="public_chat")
    room = await restricted_room(alice, "restricted", space)
    await alice.invite(room, carol.user_id)
    status, body = await join(carol, room)
    assert status == 200, body
    assert AUTHORISER not in await member(alice, room, carol.user_id)


async def test_authoriser_is_the_local_member_with_most_power(client: Client) -> None:
    alice, bob, dan = [await client.register(n) for n in ("alice", "bob", "dan")]
    space = await alice.create_room(preset="public_chat")
    room = await restricted_room(alice, "restricted", space, room_version="11")
    await alice.invite(room, bob.user_id)
    await bob.join(room)
    await dan.join(space)
    # alice hands the room to bob and keeps less power than he has, but enough to invite.
    path = f"{V3}/rooms/{quote(room, safe='')}/state/m.room.power_levels/"
    levels = await alice.ok("GET", path)
    levels["users"] = {alice.user_id: 60, bob.user_id: 100}
    levels["invite"] = 50
    await alice.ok("PUT", path, levels)
    assert (await join(dan, room))[0] == 200
    assert (await member(alice, room, dan.user_id))[AUTHORISER] == bob.user_id


async def test_no_local_user_may_invite_unable_to_grant(client: Client) -> None:
    alice, bob = await client.register("alice"), await client.register("bob")
    space = await alice.create_room(preset="public_chat")
    # Room 11: its creator can give up the power to invite (in room 12 a creator cannot).
    room = await restricted_room(alice, "restricted", space, room_version="11")
    await bob.join(space)
    path = f"{V3}/rooms/{quote(room, safe='')}/state/m.room.power_levels/"
    levels = await alice.ok("GET", path)
    levels["users"] = {alice.user_id: 0}
    levels["invite"] = 50
    await alice.ok("PUT", path, levels)

    status, body = await join(bob, room)
    assert (status, body["errcode"]) == (400, "M_UNABLE_TO_GRANT_JOIN"), body
    assert (await member(alice, room, alice.user_id))["membership"] == "join"
    path = f"{V3}/rooms/{quote(room, safe='')}/state/m.room.member/{quote(bob.user_id)}"
    assert (await alice.request("GET", path)).status == 404
