"""Messages received over federation (live and backfilled) are indexed as they are stored:
found by ``/search`` on the receiving server (both databases), gone when redacted remotely."""

from __future__ import annotations

from typing import Any

from tests.homeserver.client import User
from tests.homeserver.conftest import Node
from tests.homeserver.federation.test_federation import eventually

SEARCH = "/_matrix/client/v3/search"


async def found(user: User, term: str) -> list[str]:
    body = {"search_categories": {"room_events": {"search_term": term, "order_by": "recent"}}}
    answer: Any = await user.ok("POST", SEARCH, body)
    return [r["result"]["event_id"] for r in answer["search_categories"]["room_events"]["results"]]


async def test_received_messages_are_searchable(pair: tuple[Node, Node]) -> None:
    a, b = pair
    async with a.client() as ca, b.client() as cb:
        alice = await ca.register("alice")
        bob = await cb.register("bob")
        room_id = await alice.create_room(preset="public_chat", name="広域防災連携")
        earlier = await alice.send(room_id, "合同防災訓練の日程案")
        await bob.ok("POST", f"/_matrix/client/v3/join/{room_id}", {},
                     params={"server_name": a.server_name})  # fmt: skip
        live = await alice.send(room_id, "防災訓練の集合場所を変更")

        async def live_found() -> bool:
            return await found(bob, "防災訓練") == [live]

        # The live message (received in a /send transaction).
        await eventually(live_found, timeout=30)
        # The earlier one once backfilled (reading back past the join fetches it).
        await bob.ok(
            "GET",
            f"/_matrix/client/v3/rooms/{room_id}/messages",
            params={"dir": "b", "limit": "50"},
        )

        async def both_found() -> bool:
            return await found(bob, "防災訓練") == [live, earlier]

        await eventually(both_found, timeout=30)
        await alice.ok("PUT", f"/_matrix/client/v3/rooms/{room_id}/redact/{live}/r1", {})

        async def gone() -> bool:
            return await found(bob, "集合場所") == []

        await eventually(gone, timeout=30)
