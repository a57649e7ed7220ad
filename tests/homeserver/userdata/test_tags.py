"""Room tags over HTTP on both databases (Element's favourites and low priority): kept in
the room's ``m.tag`` account data and given by /sync; one's own tags only; bad names and
orders refused.  And the empty answers of what the node does not offer (3PIDs, third-party
networks).  Responses are validated against the spec's OpenAPI when the run has it."""

from __future__ import annotations

import asyncio
from urllib.parse import quote

from tests.homeserver.conftest import Node
from tests.homeserver.openapi import ClientServerSpec, ValidatingClient

V3 = "/_matrix/client/v3"


def tags_path(user_id: str, room_id: str, tag: str | None = None) -> str:
    path = f"{V3}/user/{quote(user_id)}/rooms/{quote(room_id)}/tags"
    return path if tag is None else f"{path}/{quote(tag, safe='')}"


async def test_tags_of_a_room(node: Node, openapi: ClientServerSpec | None) -> None:
    async with ValidatingClient(node.base_url, openapi) as c:
        alice = await c.register("alice")
        mallory = await c.register("mallory")
        room_id = await alice.create_room(preset="private_chat")
        assert await alice.ok("GET", tags_path(alice.user_id, room_id)) == {"tags": {}}

        await alice.ok("PUT", tags_path(alice.user_id, room_id, "m.favourite"), {"order": 0.25})
        await alice.ok("PUT", tags_path(alice.user_id, room_id, "u.防災"), {})
        tags = await alice.ok("GET", tags_path(alice.user_id, room_id))
        assert tags == {"tags": {"m.favourite": {"order": 0.25}, "u.防災": {}}}
        # /sync gives them as the room's m.tag account data.
        synced = await alice.sync()
        room_data = synced["rooms"]["join"][room_id]["account_data"]["events"]
        assert {"type": "m.tag", "content": tags} in room_data

        await alice.ok("DELETE", tags_path(alice.user_id, room_id, "u.防災"))
        await alice.ok("DELETE", tags_path(alice.user_id, room_id, "u.never"))  # fine
        tags = await alice.ok("GET", tags_path(alice.user_id, room_id))
        assert tags == {"tags": {"m.favourite": {"order": 0.25}}}

        # Concurrent changes are not lost (each rewrites m.tag).
        await asyncio.gather(
            *(
                alice.ok("PUT", tags_path(alice.user_id, room_id, f"u.{i}"), {"order": i / 10})
                for i in range(8)
            )
        )
        tags = await alice.ok("GET", tags_path(alice.user_id, room_id))
        assert set(tags["tags"]) == {"m.favourite", *(f"u.{i}" for i in range(8))}

        # The attacker's side: others' tags, rooms one is not in, bad names and orders.
        for method in ("GET", "PUT", "DELETE"):
            tag = None if method == "GET" else "m.favourite"
            theirs = await mallory.request(method, tags_path(alice.user_id, room_id, tag), {})
            assert (theirs.status, theirs.body["errcode"]) == (403, "M_FORBIDDEN"), method
        outside = await mallory.request("PUT", tags_path(mallory.user_id, room_id, "u.x"), {})
        assert (outside.status, outside.body["errcode"]) == (403, "M_FORBIDDEN")
        for tag, body in (("u." + "x" * 300, {}), ("u.order", {"order": "first"}),
                          ("u.order", {"order": True})):  # fmt: skip
            bad = await alice.request("PUT", tags_path(alice.user_id, room_id, tag), body)
            assert (bad.status, bad.body["errcode"]) == (400, "M_INVALID_PARAM"), (tag, body)
        not_object = await alice.request("PUT", tags_path(alice.user_id, room_id, "u.list"), [1, 2])
        assert not_object.status == 400 and not_object.body["errcode"] in (
            "M_BAD_JSON", "M_NOT_JSON",
        )  # fmt: skip
        assert set((await alice.ok("GET", tags_path(alice.user_id, room_id)))["tags"]) == {
            "m.favourite", *(f"u.{i}" for i in range(8)),
        }  # fmt: skip
        c.check(
            "GET /_matrix/client/v3/user/{userId}/rooms/{roomId}/tags",
            "PUT /_matrix/client/v3/user/{userId}/rooms/{roomId}/tags/{tag}",
            "DELETE /_matrix/client/v3/user/{userId}/rooms/{roomId}/tags/{tag}",
        )


async def test_what_the_node_does_not_offer_answers_empty(
    node: Node, openapi: ClientServerSpec | None
) -> None:
    async with ValidatingClient(node.base_url, openapi) as c:
        alice = await c.register("alice")
        assert await alice.ok("GET", f"{V3}/account/3pid") == {"threepids": []}
        assert await alice.ok("GET", f"{V3}/thirdparty/protocols") == {}
        assert await alice.ok("GET", f"{V3}/thirdparty/location", params={"alias": "#a:b"}) == []
        assert await alice.ok("GET", f"{V3}/thirdparty/user/irc") == []
        unknown = await alice.request("GET", f"{V3}/thirdparty/protocol/irc")
        assert (unknown.status, unknown.body["errcode"]) == (404, "M_NOT_FOUND")
        anonymous = await c.request("GET", f"{V3}/account/3pid")
        assert (anonymous.status, anonymous.body["errcode"]) == (401, "M_MISSING_TOKEN")
        c.check(
            "GET /_matrix/client/v3/account/3pid",
            "GET /_matrix/client/v3/thirdparty/protocols",
        )
