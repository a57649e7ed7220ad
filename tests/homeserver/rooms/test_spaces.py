"""Spaces on one node: ``GET /_matrix/client/v1/rooms/{roomId}/hierarchy`` over real HTTP,
every response validated against the spec's OpenAPI.

The space (a prefecture with its municipalities' rooms)::

    県 (space, public)
      ├─ 防災 (order "a", suggested)
      ├─ 広報 (order "b")
      ├─ 人事 (order "c", invite only: hidden from bob)
      ├─ 会議 (order "d", restricted to members of 市町村)
      ├─ 市町村 (order "m", space, suggested)
      │    ├─ 市役所
      │    └─ 県 (a loop)
      ├─ 記録 (no order, invite only but world-readable)
      ├─ 相談 (no order, knock)
      └─ a removed child (no via)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest

from homeserver.rooms.summary import child_order_key
from tests.homeserver.client import Response, User
from tests.homeserver.conftest import Node
from tests.homeserver.openapi import ClientServerSpec, ValidatingClient

V1 = "/_matrix/client/v1"
HIERARCHY = "GET /_matrix/client/v1/rooms/{roomId}/hierarchy"


@dataclass
class Space:
    client: ValidatingClient
    alice: User
    bob: User
    ids: dict[str, str]  # name -> room ID

    def names(self, rooms: list[dict[str, Any]]) -> list[str]:
        by_id = {v: k for k, v in self.ids.items()}
        return [by_id[r["room_id"]] for r in rooms]


async def hierarchy(user: User, room_id: str, **params: str) -> Response:
    return await user.request(
        "GET", f"{V1}/rooms/{quote(room_id, safe='')}/hierarchy", params=params or None
    )


async def walk(user: User, room_id: str, **params: str) -> list[dict[str, Any]]:
    response = await hierarchy(user, room_id, **params)
    assert response.status == 200, response
    assert "next_batch" not in response.body
    rooms: list[dict[str, Any]] = response.body["rooms"]
    return rooms


async def link(user: User, parent: str, child: str, server: str, **content: Any) -> None:
    await user.ok(
        "PUT",
        f"/_matrix/client/v3/rooms/{quote(parent, safe='')}/state/m.space.child/{quote(child, safe='')}",
        {"via": [server], **content},
    )
    await asyncio.sleep(0.005)  # distinct origin_server_ts for the children without order


@pytest.fixture
async def space(node: Node, openapi: ClientServerSpec | None) -> AsyncIterator[Space]:
    client = ValidatingClient(node.base_url, openapi)
    try:
        alice = await client.register("alice")
        bob = await client.register("bob")
        server = node.server_name
        ids: dict[str, str] = {}
        space = {"type": "m.space"}

        def rule(join_rule: str, **extra: Any) -> list[dict[str, Any]]:
            content = {"join_rule": join_rule, **extra}
            return [{"type": "m.room.join_rules", "state_key": "", "content": content}]

        ids["県"] = await alice.create_room(
            preset="public_chat", name="県", topic="広域", creation_content=space
        )
        ids["市町村"] = await alice.create_room(
            preset="public_chat", name="市町村", creation_content=space
        )
        for name in ("防災", "広報", "市役所"):
            ids[name] = await alice.create_room(preset="public_chat", name=name)
        ids["人事"] = await alice.create_room(preset="private_chat", name="人事")
        allow = [{"type": "m.room_membership", "room_id": ids["市町村"]}]
        ids["会議"] = await alice.create_room(
            preset="private_chat", name="会議", initial_state=rule("restricted", allow=allow)
        )
        world = [
            {
                "type": "m.room.history_visibility",
                "state_key": "",
                "content": {"history_visibility": "world_readable"},
            }
        ]
        ids["記録"] = await alice.create_room(
            preset="private_chat", name="記録", initial_state=world
        )
        ids["相談"] = await alice.create_room(
            preset="private_chat", name="相談", initial_state=rule("knock")
        )
        ids["削除"] = await alice.create_room(preset="public_chat", name="削除")
        root = ids["県"]
        await link(alice, root, ids["記録"], server)
        await link(alice, root, ids["防災"], server, order="a", suggested=True)
        await link(alice, root, ids["市町村"], server, order="m", suggested=True)
        await link(alice, root, ids["広報"], server, order="b")
        await link(alice, root, ids["人事"], server, order="c")
        await link(alice, root, ids["会議"], server, order="d")
        await link(alice, root, ids["相談"], server)
        await link(alice, root, ids["削除"], server)
        await alice.ok(  # removed again: no via
            "PUT",
            f"/_matrix/client/v3/rooms/{quote(root, safe='')}/state/m.space.child/{quote(ids['削除'], safe='')}",
            {},
        )
        await link(alice, ids["市町村"], ids["市役所"], server)
        await link(alice, ids["市町村"], root, server)
        yield Space(client, alice, bob, ids)
    finally:
        await client.close()


async def test_walk_orders_children_hides_private_rooms_and_breaks_loops(space: Space) -> None:
    rooms = await walk(space.bob, space.ids["県"])
    # Depth first, children in the spec's order; 人事 hidden; 会議 hidden until bob is in
    # 市町村; 県 listed once although 市町村 links back to it.
    assert space.names(rooms) == ["県", "防災", "広報", "市町村", "市役所", "記録", "相談"]
    await space.bob.join(space.ids["市町村"])
    rooms = await walk(space.bob, space.ids["県"])
    assert space.names(rooms) == ["県", "防災", "広報", "会議", "市町村", "市役所", "記録", "相談"]
    # alice is in 人事.
    assert "人事" in space.names(await walk(space.alice, space.ids["県"]))

    root = rooms[0]
    assert root["room_type"] == "m.space" and root["name"] == "県" and root["topic"] == "広域"
    assert root["join_rule"] == "public" and root["world_readable"] is False
    assert root["num_joined_members"] == 1 and root["guest_can_join"] is False
    assert "allowed_room_ids" not in rooms[3]  # the client API leaves it out (as Synapse)
    assert rooms[3]["join_rule"] == "restricted"
    children = root["children_state"]
    # Every link with a via, in order, whether the user may see the room or not.
    assert [space.names([{"room_id": c["state_key"]}])[0] for c in children] == [
        "防災", "広報", "人事", "会議", "市町村", "記録", "相談"
    ]  # fmt: skip
    for child in children:
        assert child["type"] == "m.space.child" and child["sender"] == space.alice.user_id
        assert isinstance(child["origin_server_ts"], int)
    assert children[0]["content"] == {"via": [space.alice.user_id.split(":", 1)[1]], "order": "a", "suggested": True}  # fmt: skip
    assert children[-2]["origin_server_ts"] < children[-1]["origin_server_ts"]
    assert all(r["children_state"] == [] for r in rooms if r.get("room_type") != "m.space")
    assert rooms[6]["join_rule"] == "invite" and rooms[6]["world_readable"] is True
    assert rooms[7]["join_rule"] == "knock"
    space.client.check(HIERARCHY)


async def test_suggested_only_and_max_depth(space: Space) -> None:
    root = space.ids["県"]
    rooms = await walk(space.bob, root, suggested_only="true")
    assert space.names(rooms) == ["県", "防災", "市町村"]
    assert [c["state_key"] for c in rooms[0]["children_state"]] == [
        space.ids["防災"],
        space.ids["市町村"],
    ]
    assert rooms[2]["children_state"] == []  # none of 市町村's children is suggested
    shallow = await walk(space.bob, root, max_depth="1")
    assert space.names(shallow) == ["県", "防災", "広報", "市町村", "記録", "相談"]
    # At the depth limit a space still lists its children, but they are not walked.
    assert len(shallow[3]["children_state"]) == 2
    assert space.names(await walk(space.bob, root, max_depth="0")) == ["県"]
    # A room that is no space: itself, without children.
    rooms = await walk(space.bob, space.ids["広報"])
    assert space.names(rooms) == ["広報"] and rooms[0]["children_state"] == []
    space.client.check(HIERARCHY)


async def test_pagination_with_from(space: Space) -> None:
    root = space.ids["県"]
    full = await walk(space.bob, root)
    pages: list[list[dict[str, Any]]] = []
    token: str | None = None
    while True:
        params = {"limit": "3", **({"from": token} if token else {})}
        response = await hierarchy(space.bob, root, **params)
        assert response.status == 200, response
        pages.append(response.body["rooms"])
        token = response.body.get("next_batch")
        if token is None:
            break
        # The same token gives the same page again.
        again = await hierarchy(space.bob, root, **{**params, "from": token})
        assert again.status == 200
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [r for p in pages for r in p] == full
    first = await hierarchy(space.bob, root, limit="2", max_depth="5")
    token = first.body["next_batch"]
    for params in (
        {"from": token},  # max_depth changed
        {"from": token, "max_depth": "5", "suggested_only": "true"},
        {"from": "no-such-token", "max_depth": "5"},
    ):
        response = await hierarchy(space.bob, root, **params)
        assert (response.status, response.body["errcode"]) == (400, "M_INVALID_PARAM"), params
    # Another user cannot continue bob's walk.
    response = await hierarchy(space.alice, root, **{"from": token, "max_depth": "5"})
    assert (response.status, response.body["errcode"]) == (400, "M_INVALID_PARAM")
    second = await hierarchy(space.bob, root, **{"from": token, "max_depth": "5", "limit": "2"})
    assert space.names(second.body["rooms"]) == space.names(full[2:4])
    space.client.check(HIERARCHY)


async def test_errors(space: Space) -> None:
    root = space.ids["県"]
    for params in (
        {"limit": "0"},
        {"limit": "-1"},
        {"limit": "abc"},
        {"limit": "1.5"},
        {"max_depth": "-1"},
        {"max_depth": "x"},
        {"suggested_only": "yes"},
    ):
        response = await hierarchy(space.bob, root, **params)
        assert (response.status, response.body["errcode"]) == (400, "M_INVALID_PARAM"), params
    # A private room, an unknown room and a non-ID: 403, as the spec says (also for a room
    # that does not exist, so that its existence is not told).
    for room_id in (space.ids["人事"], "!unknown:example.org", "nonsense"):
        response = await hierarchy(space.bob, room_id)
        assert (response.status, response.body["errcode"]) == (403, "M_FORBIDDEN"), room_id
    anonymous = await space.client.request("GET", f"{V1}/rooms/{quote(root, safe='')}/hierarchy")
    assert (anonymous.status, anonymous.body["errcode"]) == (401, "M_MISSING_TOKEN")
    # A huge limit is capped, not refused.
    assert len((await hierarchy(space.bob, root, limit="99999999999999")).body["rooms"]) == 7
    space.client.check(HIERARCHY)


def test_child_order_matches_the_spec_example() -> None:
    """The example of the spec's "Ordering of children within a space"."""

    def child(room: str, ts: int, order: Any = None) -> dict[str, Any]:
        content: dict[str, Any] = {"via": ["example.org"]}
        if order is not None:
            content["order"] = order
        return {"type": "m.space.child", "state_key": room, "origin_server_ts": ts, "content": content}  # fmt: skip

    children = [
        child("!e:example.org", 1640641000000),
        child("!c:example.org", 1640841000000, "first"),
        child("!d:example.org", 1640741000000),
        child("!a:example.org", 1640141000000, "aaaa"),
        child("!b:example.org", 1640341000000, " "),
        # Invalid orders count as none; equal timestamps fall back to the room ID.
        child("!g:example.org", 1640741000000, "x" * 51),
        child("!f:example.org", 1640741000000, "\u3042"),
        child("!h:example.org", 1640741000000, 5),
    ]
    ordered = [c["state_key"][1] for c in sorted(children, key=child_order_key)]
    assert ordered == ["b", "a", "c", "e", "d", "f", "g", "h"]


def test_other_servers_answers_are_checked() -> None:
    """What another server's /hierarchy says reaches clients only in the spec's shape."""
    from homeserver.federation.spaces import InvalidHierarchy, parse_hierarchy

    room = {"room_id": "!s:b", "num_joined_members": 2, "world_readable": False, "guest_can_join": False}  # fmt: skip
    link = {"type": "m.space.child", "state_key": "!c:b", "sender": "@u:b", "origin_server_ts": 5, "content": {"via": ["b"]}}  # fmt: skip
    good = parse_hierarchy(
        {
            "room": {**room, "name": 5, "topic": "t", "evil": "x", "children_state": [
                {**link, "state_key": "!d:b", "origin_server_ts": 9},
                link,
                {**link, "state_key": "!e:b", "content": {"via": []}},  # removed
                {**link, "state_key": "!f:b", "origin_server_ts": "9"},  # no timestamp
                {**link, "type": "m.space.parent"},
            ]},
            "children": [
                {**room, "room_id": "!c:b", "allowed_room_ids": ["!s:b", 7]},
                {"room_id": "!d:b"},  # no required fields: dropped
                "junk",
            ],
            "inaccessible_children": ["!x:b"],
        },
        "!s:b",
    )  # fmt: skip
    assert good.room == {**room, "topic": "t"}
    assert [c["state_key"] for c in good.children_state] == ["!c:b", "!d:b"]
    assert good.children == {"!c:b": {**room, "room_id": "!c:b", "allowed_room_ids": ["!s:b"]}}
    assert good.inaccessible == {"!x:b"}
    for bad in (
        [],
        {"room": {**room, "room_id": "!other:b"}},
        {"room": {"room_id": "!s:b"}},
        {"room": {**room, "children_state": {}}},
        {"room": {**room, "children_state": ["x"]}},
        {"room": {**room, "children_state": [{**link, "type": 1}]}},
        {"room": {**room, "children_state": [{**link, "content": {"via": "b"}}]}},
        {"room": room, "children": {}},
        {"room": room, "inaccessible_children": [1]},
    ):
        with pytest.raises(InvalidHierarchy):
            parse_hierarchy(bad, "!s:b")
