"""GET /notifications over HTTP on both databases: the events that notified the caller,
newest first, paginated with next_token, ``only=highlight``; nobody sees another user's;
bad tokens refused.  Responses are validated against the spec's OpenAPI when the run has
it."""

from __future__ import annotations

from typing import Any

from tests.homeserver.conftest import Node
from tests.homeserver.openapi import ClientServerSpec, ValidatingClient

V3 = "/_matrix/client/v3"


async def test_notifications(node: Node, openapi: ClientServerSpec | None) -> None:
    async with ValidatingClient(node.base_url, openapi) as c:
        alice = await c.register("alice")
        bob = await c.register("bob")
        mallory = await c.register("mallory")
        room_id = await alice.create_room(preset="private_chat", invite=[bob.user_id])
        await bob.join(room_id)
        first = await bob.send(room_id, "おはよう")
        mention = {"msgtype": "m.text", "body": "alice: 至急", "m.mentions": {"user_ids": [alice.user_id]}}  # fmt: skip
        second = (await bob.ok("PUT", f"{V3}/rooms/{room_id}/send/m.room.message/mention1", mention))["event_id"]  # fmt: skip
        third = await bob.send(room_id, "了解")

        listed = await alice.ok("GET", f"{V3}/notifications")
        items = listed["notifications"]
        assert [n["event"]["event_id"] for n in items] == [third, second, first]
        assert "next_token" not in listed
        for n in items:
            assert n["room_id"] == room_id and n["read"] is False and n["ts"] > 0
            assert "room_id" not in n["event"] and "notify" in n["actions"]
        assert {"set_tweak": "highlight"} in items[1]["actions"]
        assert items[1]["event"]["content"]["body"] == "alice: 至急"

        highlights = await alice.ok("GET", f"{V3}/notifications", params={"only": "highlight"})
        assert [n["event"]["event_id"] for n in highlights["notifications"]] == [second]

        # Pages of one, each with the token of the next.
        seen: list[str] = []
        params: dict[str, Any] = {"limit": "1"}
        while True:
            page = await alice.ok("GET", f"{V3}/notifications", params=params)
            seen += [n["event"]["event_id"] for n in page["notifications"]]
            if "next_token" not in page:
                break
            params = {"limit": "1", "from": page["next_token"]}
        assert seen == [third, second, first]

        # Nobody sees another's; the sender is not notified of their own messages.
        assert (await mallory.ok("GET", f"{V3}/notifications"))["notifications"] == []
        bobs = (await bob.ok("GET", f"{V3}/notifications"))["notifications"]
        assert [n["event"]["content"]["membership"] for n in bobs] == ["invite"]
        for bad in ({"from": "abc"}, {"from": "-1"}, {"limit": "many"}):
            answer = await alice.request("GET", f"{V3}/notifications", params=bad)
            assert (answer.status, answer.body["errcode"]) == (400, "M_INVALID_PARAM"), bad
        unauthenticated = await c.request("GET", f"{V3}/notifications")
        assert unauthenticated.status == 401

        # A read receipt reads them (the unread counts are what the list holds).
        await alice.ok("POST", f"{V3}/rooms/{room_id}/receipt/m.read/{second}", {})
        after = await alice.ok("GET", f"{V3}/notifications")
        assert [n["event"]["event_id"] for n in after["notifications"]] == [third]
        c.check("GET /_matrix/client/v3/notifications")
