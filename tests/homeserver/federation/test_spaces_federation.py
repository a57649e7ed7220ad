"""Spaces across two Kairan nodes over real HTTPS: a prefecture space on A whose children
live on A and on B, B's space with a room of A's, and A's federation ``/hierarchy`` as B
sees it — responses validated against the spec's OpenAPI (Client-Server and
Server-Server)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jsonschema
import pytest
from aiohttp import web

from federation.client import RemoteError
from tests.homeserver.client import User
from tests.homeserver.conftest import Node, start_node, stop_node
from tests.homeserver.openapi import ClientServerSpec, ValidatingClient

HIERARCHY = "GET /_matrix/client/v1/rooms/{roomId}/hierarchy"
SPACE = {"type": "m.space"}


def federation_validator(spec: ClientServerSpec | None) -> Callable[[Any], None]:
    """Checks a 200 from ``GET /hierarchy/{roomId}`` against the Server-Server spec's schema
    (raises if it does not match); nothing to check when the run has no spec."""
    if spec is None:
        return lambda body: None
    uri = (spec.root / "data" / "api" / "server-server" / "space_hierarchy.yaml").as_uri()
    pointer = "/paths/~1hierarchy~1{roomId}/get/responses/200/content/application~1json/schema"
    spec.document(uri)  # loads it (and proves the pointer below exists)
    validator = jsonschema.Draft202012Validator(
        {"$ref": f"{uri}#{pointer}"}, registry=spec.registry
    )

    def validate(body: Any) -> None:
        spec.validated += 1
        validator.validate(body)

    return validate


@dataclass
class Pair:
    a: Node
    b: Node
    runners: dict[str, web.AppRunner] = field(default_factory=dict)

    async def stop(self, name: str) -> None:
        runner = self.runners.pop(name)
        await stop_node(getattr(self, name), runner)


@pytest.fixture
async def pair(tmp_path: Path, db_url: str, db_url_b: str) -> AsyncIterator[Pair]:
    a, runner_a = await start_node(tmp_path / "a", db_url, tls=True)
    started = Pair(a, a, {"a": runner_a})
    try:
        started.b, started.runners["b"] = await start_node(tmp_path / "b", db_url_b, tls=True)
        yield started
    finally:
        for name in list(started.runners):
            await started.stop(name)


async def link(user: User, parent: str, child: str, server: str, **content: Any) -> None:
    path = f"/_matrix/client/v3/rooms/{quote(parent, safe='')}/state/m.space.child/"
    await user.ok("PUT", path + quote(child, safe=""), {"via": [server], **content})


async def walk(user: User, room_id: str, **params: str) -> list[dict[str, Any]]:
    body = await user.ok(
        "GET", f"/_matrix/client/v1/rooms/{quote(room_id, safe='')}/hierarchy", params=params
    )
    assert "next_batch" not in body
    rooms: list[dict[str, Any]] = body["rooms"]
    return rooms


async def test_space_across_two_nodes(pair: Pair, openapi: ClientServerSpec | None) -> None:
    a, b = pair.a, pair.b
    async with (
        ValidatingClient(a.base_url, openapi) as ca,
        ValidatingClient(b.base_url, openapi) as cb,
    ):
        alice, carol = await ca.register("alice"), await ca.register("carol")
        bob = await cb.register("bob")
        ids: dict[str, str] = {}
        # On B: a town room, a private council room, and B's own space with two rooms:
        # its neighbourhood association (on B) and A's city room (linked further down).
        ids["町"] = await bob.create_room(preset="public_chat", name="町")
        ids["町議会"] = await bob.create_room(preset="private_chat", name="町議会")
        ids["B空間"] = await bob.create_room(
            preset="public_chat", name="B空間", creation_content=SPACE
        )
        ids["町内会"] = await bob.create_room(preset="public_chat", name="町内会", topic="回覧板")
        await link(bob, ids["B空間"], ids["町内会"], b.server_name)
        # On A: the prefecture space, a city room, a private room, a restricted one.
        ids["県"] = await alice.create_room(preset="public_chat", name="県", creation_content=SPACE)
        ids["市"] = await alice.create_room(preset="public_chat", name="市")
        ids["秘"] = await alice.create_room(preset="private_chat", name="秘")
        rule = {
            "join_rule": "restricted",
            "allow": [{"type": "m.room_membership", "room_id": ids["県"]}],
        }
        ids["連絡"] = await alice.create_room(
            preset="private_chat",
            name="連絡",
            initial_state=[{"type": "m.room.join_rules", "state_key": "", "content": rule}],
        )
        await link(bob, ids["B空間"], ids["市"], a.server_name)
        root = ids["県"]
        await link(alice, root, ids["市"], a.server_name, order="1", suggested=True)
        await link(alice, root, ids["町"], b.server_name, order="2")
        await link(alice, root, ids["町議会"], b.server_name, order="3")
        await link(alice, root, ids["B空間"], b.server_name, order="4")
        await link(alice, root, ids["秘"], a.server_name, order="5")
        await link(alice, root, ids["連絡"], a.server_name, order="6")
        name = {v: k for k, v in ids.items()}

        # alice walks A's space: B's town and B's space (with its room) come from B's
        # /hierarchy; B's council room is hidden (B refuses A); 市 appears once.
        rooms = await walk(alice, root)
        assert [name[r["room_id"]] for r in rooms] == ["県", "市", "町", "B空間", "町内会", "秘", "連絡"]  # fmt: skip
        town = rooms[2]
        assert town["name"] == "町" and town["join_rule"] == "public"
        assert town["num_joined_members"] == 1 and town["children_state"] == []
        assert [c["state_key"] for c in rooms[3]["children_state"]] == [ids["町内会"], ids["市"]]
        assert rooms[4]["topic"] == "回覧板"
        # carol is in no room of A's: no private room, no restricted one.
        assert [name[r["room_id"]] for r in await walk(carol, root)] == ["県", "市", "町", "B空間", "町内会"]  # fmt: skip
        # suggested_only asks B with suggested_only too; only 市 is suggested.
        assert [name[r["room_id"]] for r in await walk(alice, root, suggested_only="true")] == [
            "県",
            "市",
        ]
        # max_depth 1: B's space is listed but its room is not walked.
        shallow = await walk(alice, root, max_depth="1")
        assert [name[r["room_id"]] for r in shallow] == ["県", "市", "町", "B空間", "秘", "連絡"]

        # And the other way round: bob walks B's space, whose second room lives on A.
        assert [name[r["room_id"]] for r in await walk(bob, ids["B空間"])] == ["B空間", "町内会", "市"]  # fmt: skip

        # B's answers are cached for minutes: with B gone, A still knows B's rooms.
        await pair.stop("b")
        rooms = await walk(alice, root)
        assert [name[r["room_id"]] for r in rooms] == ["県", "市", "町", "B空間", "町内会", "秘", "連絡"]  # fmt: skip
        ca.check(HIERARCHY)
        cb.check(HIERARCHY)


async def test_federation_hierarchy_answer(pair: Pair, openapi: ClientServerSpec | None) -> None:
    a, b = pair.a, pair.b
    validate = federation_validator(openapi)
    client = b.services.federation.client  # B's own signed requests to A
    async with (
        ValidatingClient(a.base_url, openapi) as ca,
        ValidatingClient(b.base_url, openapi) as cb,
    ):
        alice = await ca.register("alice")
        bob = await cb.register("bob")
        root = await alice.create_room(preset="public_chat", name="県", creation_content=SPACE)
        city = await alice.create_room(preset="public_chat", name="市", topic="市政")
        secret = await alice.create_room(preset="private_chat", name="秘")
        rule = {"join_rule": "restricted", "allow": [{"type": "m.room_membership", "room_id": root}]}  # fmt: skip
        restricted = await alice.create_room(
            preset="private_chat",
            initial_state=[{"type": "m.room.join_rules", "state_key": "", "content": rule}],
        )
        elsewhere = "!elsewhere:" + b.server_name  # a child A is not in: left out
        for order, child in enumerate((city, secret, restricted, elsewhere)):
            await link(alice, root, child, a.server_name, order=str(order), suggested=child == city)

        answer = await client.get_room_hierarchy(a.server_name, root, False)
        validate(answer)
        assert answer["room"]["room_id"] == root and answer["room"]["room_type"] == "m.space"
        assert [c["state_key"] for c in answer["room"]["children_state"]] == [
            city, secret, restricted, elsewhere
        ]  # fmt: skip
        assert [c["room_id"] for c in answer["children"]] == [city]
        assert answer["children"][0]["topic"] == "市政"
        assert "children_state" not in answer["children"][0]
        # B has nobody in the private room nor in the space the restricted room names.
        assert answer["inaccessible_children"] == [secret, restricted]

        # Once bob is in the space, the restricted room is B's to see, with its allowed rooms.
        await bob.ok("POST", f"/_matrix/client/v3/join/{quote(root, safe='')}", {}, params={"server_name": a.server_name})  # fmt: skip
        answer = await client.get_room_hierarchy(a.server_name, root, False)
        validate(answer)
        assert [c["room_id"] for c in answer["children"]] == [city, restricted]
        assert answer["children"][1]["allowed_room_ids"] == [root]
        assert answer["children"][1]["join_rule"] == "restricted"
        assert answer["inaccessible_children"] == [secret]

        suggested = await client.get_room_hierarchy(a.server_name, root, True)
        validate(suggested)
        assert [c["state_key"] for c in suggested["room"]["children_state"]] == [city]
        assert [c["room_id"] for c in suggested["children"]] == [city]

        # A room that is no space: itself, no children.
        plain = await client.get_room_hierarchy(a.server_name, city, False)
        validate(plain)
        assert plain["room"]["children_state"] == [] and plain["children"] == []

        # Unknown rooms and rooms B may not see: 404 M_NOT_FOUND.
        for room_id in ("!unknown:" + a.server_name, secret):
            with pytest.raises(RemoteError) as raised:
                await client.get_room_hierarchy(a.server_name, room_id, False)
            assert (raised.value.status, raised.value.errcode) == (404, "M_NOT_FOUND")

        # A server the space's ACL denies: 403.
        acl = {"allow": ["*"], "deny": ["127.0.0.1"], "allow_ip_literals": True}
        await alice.ok("PUT", f"/_matrix/client/v3/rooms/{quote(root, safe='')}/state/m.room.server_acl/", acl)  # fmt: skip
        await asyncio.sleep(0)
        with pytest.raises(RemoteError) as raised:
            await client.get_room_hierarchy(a.server_name, root, False)
        assert (raised.value.status, raised.value.errcode) == (403, "M_FORBIDDEN")
        ca.check()
        cb.check()
