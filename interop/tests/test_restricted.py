"""Restricted rooms across servers: a member of the allowed room joins through the room's
server, which names one of its users who may invite; others are refused; and a server in
the room whose own users may not invite joins its user through the server whose user may."""

from __future__ import annotations

import pytest

from interop.client import Client, MatrixError
from interop.tests.support import Cluster, Users, server_of, wait_joined

AUTHORISER = "join_authorised_via_users_server"


async def restricted_room(creator: Client, allowed: str, **body: object) -> str:
    rule = {"join_rule": "restricted", "allow": [{"type": "m.room_membership", "room_id": allowed}]}
    state = [{"type": "m.room.join_rules", "state_key": "", "content": rule}]
    return await creator.create_room(preset="private_chat", initial_state=state, **body)


async def authoriser_seen(client: Client, room_id: str, user_id: str) -> object:
    content = await client.state_event(room_id, "m.room.member", user_id)
    assert content is not None and content.get("membership") == "join", content
    return content.get(AUTHORISER)


async def test_member_of_allowed_room_joins_remote_restricted_room(
    cluster: Cluster, users: Users
) -> None:
    alice = await users.on(cluster.a, "alice")
    bob, carol = await users.on(cluster.b, "bob"), await users.on(cluster.b, "carol")
    space = await alice.create_room(preset="public_chat", creation_content={"type": "m.space"})
    room = await restricted_room(alice, space)
    await bob.join(space, via=[server_of(alice)])
    await wait_joined([alice], space, [bob])

    await bob.join(room, via=[server_of(alice)])
    await wait_joined([alice, bob], room, [alice, bob])
    for client in (alice, bob):
        assert await authoriser_seen(client, room, bob.user_id) == alice.user_id

    with pytest.raises(MatrixError) as refused:
        await carol.join(room, via=[server_of(alice)])
    assert refused.value.status == 403, refused.value
    assert await alice.membership(room, carol.user_id) is None


async def test_join_through_the_server_whose_user_may_invite(
    cluster: Cluster, users: Users
) -> None:
    bob = await users.on(cluster.b, "bob")
    carol, dave = await users.on(cluster.a, "carol"), await users.on(cluster.a, "dave")
    space = await bob.create_room(preset="public_chat")
    room = await restricted_room(bob, space, power_level_content_override={"invite": 50})
    await bob.invite(room, carol.user_id)
    await wait_joined([bob], space, [bob])
    await carol.join(room, via=[server_of(bob)])
    await dave.join(space, via=[server_of(bob)])
    await wait_joined([bob], space, [dave])

    # A is in the room, but its only member there (carol) may not invite: A joins dave
    # through B, whose bob authorises the join.
    await dave.join(room, via=[server_of(bob)])
    await wait_joined([bob, dave], room, [bob, carol, dave])
    for client in (bob, dave):
        assert await authoriser_seen(client, room, dave.user_id) == bob.user_id
