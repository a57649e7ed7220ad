"""``POST /search`` from the attacker's side, on both databases over HTTP: rooms one is not
in, history from before one's join where the room shows only joined members' history,
rooms one left, other users' tokens, and malformed requests (400 with the Matrix error,
never a 500)."""

from __future__ import annotations

import base64
import json
from typing import Any

from tests.homeserver.client import User
from tests.homeserver.conftest import Node
from tests.homeserver.openapi import ClientServerSpec, ValidatingClient

V3 = "/_matrix/client/v3"
SEARCH = f"{V3}/search"


def body(term: Any, **criteria: Any) -> dict[str, Any]:
    return {"search_categories": {"room_events": {"search_term": term, **criteria}}}


async def found_ids(user: User, term: str, next_batch: str | None = None, **c: Any) -> list[str]:
    params = {"next_batch": next_batch} if next_batch else None
    answer = await user.ok("POST", SEARCH, body(term, **c), params=params)
    return [r["result"]["event_id"] for r in answer["search_categories"]["room_events"]["results"]]


async def test_only_what_the_user_may_see(node: Node, openapi: ClientServerSpec | None) -> None:
    async with ValidatingClient(node.base_url, openapi) as c:
        alice = await c.register("alice")
        bob = await c.register("bob")
        mallory = await c.register("mallory")
        room = await alice.create_room(preset="public_chat")
        await alice.ok(
            "PUT", f"{V3}/rooms/{room}/state/m.room.history_visibility",
            {"history_visibility": "joined"},
        )  # fmt: skip
        secret = await alice.send(room, "内部監査の計画（非公開）")
        assert await found_ids(alice, "監査") == [secret]

        # Not in the room: nothing, even when naming the room in the filter.
        assert await found_ids(mallory, "監査") == []
        assert await found_ids(mallory, "監査", filter={"rooms": [room]}) == []

        # Joined later: nothing from before the join (history visibility "joined").
        await bob.join(room)
        later = await alice.send(room, "監査の日程が決まりました")
        assert await found_ids(bob, "監査") == [later]
        assert await found_ids(bob, "監査", order_by="recent") == [later]
        assert await found_ids(bob, "非公開") == []
        # Context around a result does not show what came before the join either.
        answer = await bob.ok(
            "POST", SEARCH, body("日程", event_context={"before_limit": 10, "after_limit": 10})
        )
        [result] = answer["search_categories"]["room_events"]["results"]
        before = [e["event_id"] for e in result["context"]["events_before"]]
        assert secret not in before

        # Left: the room is not searched any more (as Synapse: joined rooms only).
        await bob.ok("POST", f"{V3}/rooms/{room}/leave", {})
        after_leave = await alice.send(room, "監査の結果報告")
        assert await found_ids(bob, "監査") == []
        assert await found_ids(bob, "監査", filter={"rooms": [room]}) == []
        assert after_leave in await found_ids(alice, "監査")

        # A token naming a room (a group's next_batch) is no way into it.
        token = base64.urlsafe_b64encode(json.dumps([1, "recent", 2**40, room]).encode())
        forged = token.decode().rstrip("=")
        assert await found_ids(mallory, "監査", forged, order_by="recent") == []

        # A redacted event is gone from everyone's search.
        await alice.ok("PUT", f"{V3}/rooms/{room}/redact/{secret}/r1", {"reason": "x"})
        assert secret not in await found_ids(alice, "監査")
        c.check(f"POST {SEARCH}")


async def test_shared_history_is_found_after_joining(
    node: Node, openapi: ClientServerSpec | None
) -> None:
    """The default visibility ("shared"): a member sees the room's earlier history."""
    async with ValidatingClient(node.base_url, openapi) as c:
        alice = await c.register("alice")
        bob = await c.register("bob")
        room = await alice.create_room(preset="public_chat")
        earlier = await alice.send(room, "防災倉庫の備蓄品リスト")
        await bob.join(room)
        assert await found_ids(bob, "備蓄") == [earlier]
        c.check(f"POST {SEARCH}")


async def test_bad_requests(node: Node, openapi: ClientServerSpec | None) -> None:
    async with ValidatingClient(node.base_url, openapi) as c:
        alice = await c.register("alice")
        room = await alice.create_room()
        for i in range(3):
            await alice.send(room, f"会議録 {i}")
        bad: list[tuple[Any, str]] = [
            ({}, "M_BAD_JSON"),
            ({"search_categories": []}, "M_BAD_JSON"),
            ({"search_categories": {}}, "M_INVALID_PARAM"),
            ({"search_categories": {"room_events": {}}}, "M_BAD_JSON"),
            ({"search_categories": {"room_events": []}}, "M_BAD_JSON"),
            ({"search_categories": {"room_events": {"search_term": 5}}}, "M_BAD_JSON"),
            ({"search_categories": {"people": {"search_term": "x"}}}, "M_INVALID_PARAM"),
            (
                {"search_categories": {"room_events": {"search_term": "x"}, "x": {}}},
                "M_INVALID_PARAM",
            ),
            (body("会議", order_by="oldest"), "M_INVALID_PARAM"),
            (body("会議", keys=["content.url"]), "M_INVALID_PARAM"),
            (body("会議", keys="content.body"), "M_BAD_JSON"),
            (body("会議", filter="all"), "M_BAD_JSON"),
            (body("会議", filter={"limit": "5"}), "M_BAD_JSON"),
            (body("会議", filter={"limit": 0}), "M_INVALID_PARAM"),
            (body("会議", filter={"rooms": room}), "M_BAD_JSON"),
            (body("会議", filter={"senders": [1]}), "M_BAD_JSON"),
            (body("会議", filter={"contains_url": "yes"}), "M_BAD_JSON"),
            (body("会議", event_context={"before_limit": -1}), "M_INVALID_PARAM"),
            (body("会議", event_context={"after_limit": 1.5}), "M_BAD_JSON"),
            (body("会議", event_context={"include_profile": 1}), "M_BAD_JSON"),
            (body("会議", event_context=[]), "M_BAD_JSON"),
            (body("会議", include_state="true"), "M_BAD_JSON"),
            (body("会議", groupings={"group_by": [{"key": "type"}]}), "M_INVALID_PARAM"),
            (body("会議", groupings={"group_by": {"key": "room_id"}}), "M_BAD_JSON"),
            (body("会議", groupings={"group_by": ["room_id"]}), "M_BAD_JSON"),
            (body("x" * 501), "M_INVALID_PARAM"),
        ]
        for request, errcode in bad:
            answer = await alice.request("POST", SEARCH, request)
            assert (answer.status, answer.body["errcode"]) == (400, errcode), request

        # next_batch: garbage, or a token of the other order, is refused.
        first = await alice.ok("POST", SEARCH, body("会議", filter={"limit": 1}))
        token = first["search_categories"]["room_events"]["next_batch"]
        for params in ({"next_batch": "!!"}, {"next_batch": "e30"}, {"next_batch": token[:-2]}):
            answer = await alice.request("POST", SEARCH, body("会議"), params=params)
            assert (answer.status, answer.body["errcode"]) == (400, "M_INVALID_PARAM"), params
        answer = await alice.request(
            "POST", SEARCH, body("会議", order_by="recent"), params={"next_batch": token}
        )
        assert (answer.status, answer.body["errcode"]) == (400, "M_INVALID_PARAM")

        # Not JSON; no access token.
        answer = await alice.request("POST", SEARCH, data=b"{")
        assert (answer.status, answer.body["errcode"]) == (400, "M_NOT_JSON")
        answer = await c.request("POST", SEARCH, body("会議"))
        assert (answer.status, answer.body["errcode"]) == (401, "M_MISSING_TOKEN")
        c.check(f"POST {SEARCH}")
