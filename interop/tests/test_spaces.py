"""Spaces across servers: a space on A lists a room on B and the other way round; each
server's ``/hierarchy`` (Client-Server) shows the other server's room, which it learns from
the other server's federation ``/hierarchy``."""

from __future__ import annotations

from urllib.parse import quote

from interop.client import Client, JsonDict
from interop.tests.support import Cluster, Users, server_of

SPACE = {"type": "m.space"}


async def hierarchy(client: Client, room_id: str, **params: str) -> list[JsonDict]:
    body = await client.request(
        "GET", f"/_matrix/client/v1/rooms/{quote(room_id, safe='')}/hierarchy", params=params
    )
    rooms: list[JsonDict] = body["rooms"]
    return rooms


async def add_child(client: Client, space: str, child: str, via: str, **content: object) -> None:
    await client.send_state(space, "m.space.child", {"via": [via], **content}, state_key=child)


async def test_space_children_on_the_other_server(cluster: Cluster, users: Users) -> None:
    alice = await users.on(cluster.a, "alice")
    bob = await users.on(cluster.b, "bob")
    a_name, b_name = server_of(alice), server_of(bob)

    a_space = await alice.create_room(preset="public_chat", name="県 (A)", creation_content=SPACE)
    a_room = await alice.create_room(preset="public_chat", name="市 (A)", topic="市政")
    b_space = await bob.create_room(preset="public_chat", name="町 (B)", creation_content=SPACE)
    b_room = await bob.create_room(preset="public_chat", name="町内会 (B)")
    b_private = await bob.create_room(preset="private_chat", name="非公開 (B)")
    await add_child(alice, a_space, a_room, a_name, order="1")
    await add_child(alice, a_space, b_room, b_name, order="2", suggested=True)
    await add_child(alice, a_space, b_private, b_name, order="3")
    await add_child(bob, b_space, a_room, a_name)

    # A's space: A's room, and B's public room as B describes it; B's private room hidden.
    rooms = await hierarchy(alice, a_space)
    assert [r["room_id"] for r in rooms] == [a_space, a_room, b_room], rooms
    remote = rooms[2]
    assert remote["name"] == "町内会 (B)" and remote["join_rule"] == "public", remote
    assert remote["num_joined_members"] == 1 and remote["children_state"] == []
    children = rooms[0]["children_state"]
    assert [c["state_key"] for c in children] == [a_room, b_room, b_private]
    assert all(isinstance(c["origin_server_ts"], int) for c in children)
    suggested = await hierarchy(alice, a_space, suggested_only="true")
    assert [r["room_id"] for r in suggested] == [a_space, b_room]

    # And B's space, whose room lives on A.
    rooms = await hierarchy(bob, b_space)
    assert [r["room_id"] for r in rooms] == [b_space, a_room], rooms
    assert rooms[1]["name"] == "市 (A)" and rooms[1]["topic"] == "市政", rooms[1]
