"""Sliding sync's caches (unread counts, latest positions, receipts on a new room's
timeline) and events received over federation: a remote member's message, mention and
read receipt show in the next responses of a warm local user, as local ones do."""

from __future__ import annotations

from tests.homeserver.client import User
from tests.homeserver.conftest import Node
from tests.homeserver.federation.test_federation import eventually
from tests.homeserver.push.test_push_notifications import send, text
from tests.homeserver.sync.test_sliding_sync import body, ok

REQUEST = {**body(), "extensions": {"receipts": {"enabled": True}}}


async def listed(user: User, conn_id: str) -> dict[str, object]:
    found: dict[str, object] = await ok(user, {**REQUEST, "conn_id": conn_id})
    return found


async def test_remote_events_and_receipts_reach_warm_caches(pair: tuple[Node, Node]) -> None:
    a, b = pair
    async with a.client() as ca, b.client() as cb:
        alice = await ca.register("alice")
        bob = await cb.register("bob")
        rooms = [await alice.create_room(preset="public_chat") for _ in range(2)]
        for room in rooms:
            await alice.send(room, "hello")
        shared = rooms[0]
        await bob.ok(
            "POST", f"/_matrix/client/v3/join/{shared}", {}, params={"server_name": a.server_name}
        )

        async def bob_joined() -> bool:
            members = await alice.ok("GET", f"/_matrix/client/v3/rooms/{shared}/joined_members")
            return bob.user_id in members["joined"]

        await eventually(bob_joined)
        await alice.send(rooms[1], "newer")
        warm = await listed(alice, "w1")
        assert warm["lists"]["all"]["ops"][0]["room_ids"] == [rooms[1], shared]  # type: ignore[index]
        assert warm["rooms"][shared]["notification_count"] == 0  # type: ignore[index]
        remote = await send(
            bob, shared, text("from B", **{"m.mentions": {"user_ids": [alice.user_id]}})
        )

        async def arrived() -> dict[str, object] | None:
            found = await listed(alice, "fresh")
            entry = found["rooms"][shared]  # type: ignore[index]
            return found if entry["notification_count"] == 1 else None

        found = await eventually(arrived)
        entry = found["rooms"][shared]  # type: ignore[index]
        assert entry["highlight_count"] == 1
        assert found["lists"]["all"]["ops"][0]["room_ids"] == [shared, rooms[1]]  # type: ignore[index]
        assert [e["event_id"] for e in entry["timeline"]] == [remote]
        # Bob reads it on B: his receipt comes over federation onto the warm timeline.
        path = f"/_matrix/client/v3/rooms/{shared}/receipt/m.read/{remote}"
        await bob.ok("POST", path, {})

        async def read_by_bob() -> bool:
            found = await listed(alice, "after-receipt")
            receipts = found["extensions"]["receipts"]["rooms"]  # type: ignore[index]
            content = receipts.get(shared, {}).get("content", {})
            return bob.user_id in content.get(remote, {}).get("m.read", {})

        await eventually(read_by_bob)
        # Alice's counts stay until she reads.
        assert (await listed(alice, "x"))["rooms"][shared]["notification_count"] == 1  # type: ignore[index]
