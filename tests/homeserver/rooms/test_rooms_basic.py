"""The basic life of a room over real HTTP: register, create, invite, join, send, sync, paginate."""

from __future__ import annotations

from tests.homeserver.client import Client
from tests.homeserver.conftest import Node


async def test_register_create_send_sync(node: Node, client: Client) -> None:
    alice = await client.register("alice")
    bob = await client.register("bob")
    assert alice.user_id == f"@alice:{node.server_name}"
    room_id = await alice.create_room(name="防災連絡", topic="訓練", preset="private_chat")
    assert room_id.startswith("!") and ":" not in room_id  # room 12 by default
    await alice.invite(room_id, bob.user_id)

    invited = await bob.sync()
    assert room_id in invited["rooms"]["invite"]
    stripped = invited["rooms"]["invite"][room_id]["invite_state"]["events"]
    assert {
        "type": "m.room.name",
        "state_key": "",
        "content": {"name": "防災連絡"},
        "sender": alice.user_id,
    } in stripped

    await bob.join(room_id)
    first = await alice.send(room_id, "こんにちは")
    second = await bob.send(room_id, "よろしくお願いします")

    synced = await alice.sync()
    joined = synced["rooms"]["join"][room_id]
    bodies = [
        e["content"].get("body")
        for e in joined["timeline"]["events"]
        if e["type"] == "m.room.message"
    ]
    assert bodies == ["こんにちは", "よろしくお願いします"]
    own = next(e for e in joined["timeline"]["events"] if e["event_id"] == first)
    assert own["unsigned"]["transaction_id"].startswith("t")
    other = next(e for e in joined["timeline"]["events"] if e["event_id"] == second)
    assert "transaction_id" not in other["unsigned"]
    assert joined["summary"]["m.joined_member_count"] == 2

    # Incremental sync: only what is new.
    third = await bob.send(room_id, "三通目")
    incremental = await alice.sync(since=synced["next_batch"])
    events = incremental["rooms"]["join"][room_id]["timeline"]["events"]
    assert [e["event_id"] for e in events] == [third]
    assert incremental["rooms"]["join"][room_id]["unread_notifications"]["notification_count"] == 2


async def test_send_is_idempotent_per_txn(node: Node, client: Client) -> None:
    alice = await client.register("alice")
    room_id = await alice.create_room()
    path = f"/_matrix/client/v3/rooms/{room_id}/send/m.room.message/same-txn"
    first = await alice.ok("PUT", path, {"msgtype": "m.text", "body": "once"})
    again = await alice.ok("PUT", path, {"msgtype": "m.text", "body": "once"})
    assert first == again
    history = await alice.ok(
        "GET", f"/_matrix/client/v3/rooms/{room_id}/messages", params={"dir": "b", "limit": "50"}
    )
    assert [e["content"].get("body") for e in history["chunk"]].count("once") == 1


async def test_messages_paginate_both_ways(node: Node, client: Client) -> None:
    alice = await client.register("alice")
    room_id = await alice.create_room()
    sent = [await alice.send(room_id, f"m{i}") for i in range(25)]
    seen: list[str] = []
    token = None
    while True:
        params = {"dir": "b", "limit": "10"}
        if token:
            params["from"] = token
        page = await alice.ok("GET", f"/_matrix/client/v3/rooms/{room_id}/messages", params=params)
        seen.extend(e["event_id"] for e in page["chunk"] if e["type"] == "m.room.message")
        if "end" not in page:
            break
        token = page["end"]
    assert seen == list(reversed(sent))
    forward = await alice.ok(
        "GET", f"/_matrix/client/v3/rooms/{room_id}/messages", params={"dir": "f", "limit": "1000"}
    )
    assert [e["event_id"] for e in forward["chunk"] if e["type"] == "m.room.message"] == sent
    assert forward["chunk"][0]["type"] == "m.room.create"


async def test_long_poll_wakes_on_message(node: Node, client: Client) -> None:
    import asyncio

    alice = await client.register("alice")
    room_id = await alice.create_room()
    start = await alice.sync()
    waiting = asyncio.create_task(alice.sync(since=start["next_batch"], timeout=20_000))
    await asyncio.sleep(0.2)
    assert not waiting.done()
    event_id = await alice.send(room_id, "wake up")
    result = await asyncio.wait_for(waiting, 5)
    assert [e["event_id"] for e in result["rooms"]["join"][room_id]["timeline"]["events"]] == [
        event_id
    ]


async def test_one_users_concurrent_room_creations_make_distinct_rooms(client: Client) -> None:
    """In room version 12 the room ID is the create event's hash: one user's rooms created
    at once with the same content must still be distinct rooms (this was a 500, a unique
    constraint on rooms.room_id, for 11 of 16 such calls)."""
    import asyncio

    alice = await client.register("alice")
    for version in ("12", "11"):
        answers = await asyncio.gather(
            *(
                alice.request("POST", "/_matrix/client/v3/createRoom", {"room_version": version})
                for _ in range(16)
            )
        )
        assert [a.status for a in answers] == [200] * 16, answers
        room_ids = {a.body["room_id"] for a in answers}
        assert len(room_ids) == 16
    joined = await alice.ok("GET", "/_matrix/client/v3/joined_rooms")
    assert len(joined["joined_rooms"]) == 32
