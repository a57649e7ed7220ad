"""Push rules for events received over federation: a remote user's mention of a local user
counts as a highlight on the local user's node, like a local event."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from tests.homeserver.conftest import Node
from tests.homeserver.federation.test_federation import eventually

V3 = "/_matrix/client/v3"


async def test_remote_mentions_count_for_local_users(pair: tuple[Node, Node]) -> None:
    a, b = pair
    async with a.client() as ca, b.client() as cb:
        alice = await ca.register("alice")
        carol = await ca.register("carol")
        bob = await cb.register("bob")
        room_id = await alice.create_room(preset="public_chat")
        await carol.join(room_id)
        await bob.ok("POST", f"{V3}/join/{room_id}", {}, params={"server_name": a.server_name})

        async def bob_joined() -> bool:
            members = await alice.ok("GET", f"{V3}/rooms/{quote(room_id, safe='')}/joined_members")
            return bob.user_id in members["joined"]

        await eventually(bob_joined)
        since = (await alice.sync())["next_batch"]
        path = f"{V3}/rooms/{quote(room_id, safe='')}/send/m.room.message"
        await bob.ok("PUT", f"{path}/f1", {"msgtype": "m.text", "body": "A市の皆さん"})
        mention = await bob.ok(
            "PUT",
            f"{path}/f2",
            {"msgtype": "m.text", "body": "Alice?", "m.mentions": {"user_ids": [alice.user_id]}},
        )
        seen: list[str] = []

        async def alice_sees_both() -> dict[str, Any] | None:
            nonlocal since
            synced = await alice.sync(since=since, timeout=1000)
            since = synced["next_batch"]
            entry = synced["rooms"].get("join", {}).get(room_id)
            if entry is None:
                return None
            seen.extend(e["event_id"] for e in entry["timeline"]["events"])
            return entry if mention["event_id"] in seen else None

        entry = await eventually(alice_sees_both)
        assert entry["unread_notifications"] == {"notification_count": 2, "highlight_count": 1}
        carol_entry = (await carol.sync())["rooms"]["join"][room_id]
        assert carol_entry["unread_notifications"] == {
            "notification_count": 2,
            "highlight_count": 0,
        }
