"""GET /notifications over HTTP on both databases: the events that notified the caller,
newest first, paginated with next_token, ``only=highlight``; nobody sees another user's;
bad tokens refused.  Responses are validated against the spec's OpenAPI when the run has
it."""

from __future__ import annotations

from typing import Any

from homeserver.rooms.housekeeping import READ_LIFETIME_MS
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

        # A read receipt reads them: still listed, as read (as Synapse), and no longer
        # counted as unread.
        await alice.ok("POST", f"{V3}/rooms/{room_id}/receipt/m.read/{second}", {})
        after = await alice.ok("GET", f"{V3}/notifications")
        assert [(n["event"]["event_id"], n["read"]) for n in after["notifications"]] == [
            (third, False), (second, True), (first, True),
        ]  # fmt: skip
        highlights = await alice.ok("GET", f"{V3}/notifications", params={"only": "highlight"})
        assert [(n["event"]["event_id"], n["read"]) for n in highlights["notifications"]] == [
            (second, True)
        ]
        page = await alice.ok("GET", f"{V3}/notifications", params={"limit": "2"})
        assert [n["event"]["event_id"] for n in page["notifications"]] == [third, second]
        rest = await alice.ok(
            "GET", f"{V3}/notifications", params={"limit": "2", "from": page["next_token"]}
        )
        assert [n["event"]["event_id"] for n in rest["notifications"]] == [first]
        synced = await alice.sync()
        counts = synced["rooms"]["join"][room_id]["unread_notifications"]
        assert counts == {"notification_count": 1, "highlight_count": 0}
        # A redacted event notifies no more, read or not.
        await bob.ok("PUT", f"{V3}/rooms/{room_id}/redact/{first}/r1", {})
        gone = await alice.ok("GET", f"{V3}/notifications")
        assert first not in [n["event"]["event_id"] for n in gone["notifications"]]
        assert (await mallory.ok("GET", f"{V3}/notifications"))["notifications"] == []
        c.check("GET /_matrix/client/v3/notifications")


async def test_read_notifications_are_forgotten_after_30_days(node: Node) -> None:
    async with ValidatingClient(node.base_url, None) as c:
        alice = await c.register("alice")
        bob = await c.register("bob")
        room_id = await alice.create_room(preset="private_chat", invite=[bob.user_id])
        await bob.join(room_id)
        event_id = await bob.send(room_id, "読んだ")
        await alice.ok("POST", f"{V3}/rooms/{room_id}/receipt/m.read/{event_id}", {})
        listed = await alice.ok("GET", f"{V3}/notifications")
        assert [n["read"] for n in listed["notifications"]] == [True]
        housekeeping = node.services.housekeeping
        assert await housekeeping.run_once() == 0  # read just now: kept
        clock = housekeeping.clock
        now = clock.now_ms
        clock.now_ms = lambda: now() + READ_LIFETIME_MS + 1000  # type: ignore[method-assign]
        try:
            assert await housekeeping.run_once() >= 1
        finally:
            clock.now_ms = now  # type: ignore[method-assign]
        assert (await alice.ok("GET", f"{V3}/notifications"))["notifications"] == []
