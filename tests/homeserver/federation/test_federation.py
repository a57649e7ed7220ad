"""Two and three Kairan nodes federating over real HTTPS on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from tests.homeserver.client import User
from tests.homeserver.conftest import Node

T = TypeVar("T")


async def eventually(check: Callable[[], Awaitable[T | None]], timeout: float = 15.0) -> T:
    """Poll ``check`` until it returns something truthy (bounded)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.1)


async def timeline_bodies(user: User, room_id: str) -> list[str]:
    page = await user.ok(
        "GET", f"/_matrix/client/v3/rooms/{room_id}/messages", params={"dir": "b", "limit": "100"}
    )
    return [
        e["content"].get("body") for e in reversed(page["chunk"]) if e["type"] == "m.room.message"
    ]


async def test_remote_join_and_messages_both_ways(pair: tuple[Node, Node]) -> None:
    a, b = pair
    async with a.client() as ca, b.client() as cb:
        alice = await ca.register("alice")
        bob = await cb.register("bob")
        room_id = await alice.create_room(preset="public_chat", name="広域連携")
        await alice.send(room_id, "A から")
        await bob.ok(
            "POST", f"/_matrix/client/v3/join/{room_id}", {}, params={"server_name": a.server_name}
        )
        # Bob's server now holds the room: its state and the join.
        state = await bob.ok("GET", f"/_matrix/client/v3/rooms/{room_id}/state/m.room.name")
        assert state == {"name": "広域連携"}

        async def alice_sees_bob() -> bool:
            members = await alice.ok("GET", f"/_matrix/client/v3/rooms/{room_id}/joined_members")
            return bob.user_id in members["joined"]

        await eventually(alice_sees_bob)
        await alice.send(room_id, "ようこそ")
        await eventually(lambda: _contains(bob, room_id, "ようこそ"))
        await bob.send(room_id, "B から返信")
        await eventually(lambda: _contains(alice, room_id, "B から返信"))
        # Both servers agree on the room's current state.
        state_a = await alice.ok("GET", f"/_matrix/client/v3/rooms/{room_id}/state")
        state_b = await bob.ok("GET", f"/_matrix/client/v3/rooms/{room_id}/state")
        assert _state_ids(state_a) == _state_ids(state_b)


async def _contains(user: User, room_id: str, body: str) -> bool:
    return body in await timeline_bodies(user, room_id)


def _state_ids(events: list[dict[str, Any]]) -> dict[tuple[str, str], str]:
    return {(e["type"], e["state_key"]): e["event_id"] for e in events}


async def test_invite_across_servers_then_kick_and_ban(pair: tuple[Node, Node]) -> None:
    a, b = pair
    async with a.client() as ca, b.client() as cb:
        alice = await ca.register("alice")
        carol = await cb.register("carol")
        room_id = await alice.create_room(preset="private_chat")
        await alice.invite(room_id, carol.user_id)
        synced = await carol.sync()
        assert room_id in synced["rooms"]["invite"]
        await carol.ok("POST", f"/_matrix/client/v3/join/{room_id}", {})

        async def joined_on_a() -> bool:
            members = await alice.ok("GET", f"/_matrix/client/v3/rooms/{room_id}/joined_members")
            return carol.user_id in members["joined"]

        await eventually(joined_on_a)
        await alice.ok(
            "POST",
            f"/_matrix/client/v3/rooms/{room_id}/kick",
            {"user_id": carol.user_id, "reason": "test"},
        )

        async def kicked_on_b() -> bool:
            synced = await carol.sync()
            return room_id in synced["rooms"].get("leave", {}) or room_id not in synced[
                "rooms"
            ].get("join", {})

        await eventually(kicked_on_b)
        await alice.ok(
            "POST", f"/_matrix/client/v3/rooms/{room_id}/ban", {"user_id": carol.user_id}
        )
        again = await carol.request("POST", f"/_matrix/client/v3/join/{room_id}", {})
        assert again.status == 403


async def test_reject_remote_invite(pair: tuple[Node, Node]) -> None:
    a, b = pair
    async with a.client() as ca, b.client() as cb:
        alice = await ca.register("alice")
        dave = await cb.register("dave")
        room_id = await alice.create_room(preset="private_chat")
        await alice.invite(room_id, dave.user_id)
        assert room_id in (await dave.sync())["rooms"]["invite"]
        await dave.ok("POST", f"/_matrix/client/v3/rooms/{room_id}/leave", {})
        assert room_id not in (await dave.sync())["rooms"].get("invite", {})

        async def rejected_on_a() -> bool:
            members = await alice.ok("GET", f"/_matrix/client/v3/rooms/{room_id}/members")
            return any(
                e["state_key"] == dave.user_id and e["content"]["membership"] == "leave"
                for e in members["chunk"]
            )

        await eventually(rejected_on_a)


async def test_backfill_after_join(pair: tuple[Node, Node]) -> None:
    a, b = pair
    async with a.client() as ca, b.client() as cb:
        alice = await ca.register("alice")
        bob = await cb.register("bob")
        room_id = await alice.create_room(preset="public_chat")
        sent = [f"past {i}" for i in range(30)]
        for body in sent:
            await alice.send(room_id, body)
        await bob.ok(
            "POST", f"/_matrix/client/v3/join/{room_id}", {}, params={"server_name": a.server_name}
        )
        seen: list[dict[str, Any]] = []
        token = None
        for _ in range(20):
            params = {"dir": "b", "limit": "10"}
            if token:
                params["from"] = token
            page = await bob.ok(
                "GET", f"/_matrix/client/v3/rooms/{room_id}/messages", params=params
            )
            seen.extend(page["chunk"])
            token = page.get("end")
            if token is None:
                break
        bodies = [e["content"].get("body") for e in reversed(seen) if e["type"] == "m.room.message"]
        assert bodies == sent, " ".join(str(b).split()[-1] for b in bodies)
        assert seen[-1]["type"] == "m.room.create"


async def test_key_server_and_notary(pair: tuple[Node, Node]) -> None:
    """A's /key/v2/server is self-signed; A as a notary returns B's keys countersigned."""
    from federation.signing import parse_server_keys, verify_json

    a, b = pair
    async with a.client() as ca:
        own = await ca.ok("GET", "/_matrix/key/v2/server")
        parsed = parse_server_keys(own, a.server_name)
        assert parsed.verify_keys == {
            a.services.signing_key.key_id: a.services.signing_key.public_key_base64
        }
        answer = await ca.ok("POST", "/_matrix/key/v2/query", {"server_keys": {b.server_name: {}}})
        (doc,) = answer["server_keys"]
        assert parse_server_keys(doc, b.server_name).verify_keys == {
            b.services.signing_key.key_id: b.services.signing_key.public_key_base64
        }
        verify_json(
            doc,
            a.server_name,
            a.services.signing_key.key_id,
            a.services.signing_key.public_key_base64,
        )
        bad = await ca.request("POST", "/_matrix/key/v2/query", {"server_keys": []})
        assert bad.status == 400 and bad.body["errcode"] == "M_BAD_JSON"
