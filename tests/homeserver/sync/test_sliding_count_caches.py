"""Sliding sync's per-room caches of the unread counts and of the receipts on a new room's
timeline events: each test warms them with responses first, then changes what they were
built from (a new message, a highlight, a read receipt, a threaded receipt, a membership,
account data, concurrent senders) and checks that the next response (on a new connection
and on the warm one) shows the change."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.homeserver.client import Client, User
from tests.homeserver.push.test_push_notifications import send, text
from tests.homeserver.push.test_thread_notifications import in_thread, receipt
from tests.homeserver.sync.test_sliding_extensions import shared_room
from tests.homeserver.sync.test_sliding_sync import body, ok

RECEIPTS = {"extensions": {"receipts": {"enabled": True}}}


async def counts(user: User, room: str, conn_id: str, pos: str | None = None) -> tuple[int, int]:
    found = await ok(user, {**body(), **RECEIPTS, "conn_id": conn_id}, pos)
    entry = found["rooms"][room]
    return entry["notification_count"], entry["highlight_count"]


async def test_new_messages_and_a_highlight_raise_warm_counts(client: Client) -> None:
    alice, bob, room = await shared_room(client)
    await alice.send(room, "one")
    assert await counts(bob, room, "a") == (1, 0)
    assert await counts(bob, room, "b") == (1, 0)  # from the cache
    first = await ok(bob, {**body(), "conn_id": "warm"})
    await alice.send(room, "two")
    assert await counts(bob, room, "c") == (2, 0)
    await send(alice, room, text("hey", **{"m.mentions": {"user_ids": [bob.user_id]}}))
    assert await counts(bob, room, "d") == (3, 1)
    incremental = await ok(bob, {**body(), "conn_id": "warm"}, first["pos"])
    entry = incremental["rooms"][room]
    assert (entry["notification_count"], entry["highlight_count"]) == (3, 1)


async def test_a_threaded_receipt_clears_its_thread_from_warm_counts(client: Client) -> None:
    alice, bob, room = await shared_room(client)
    root = await send(alice, room, text("root"))
    await send(alice, room, in_thread(root, "in thread 1"))
    last = await send(alice, room, in_thread(root, "in thread 2"))
    assert await counts(bob, room, "a") == (3, 0)
    await receipt(bob, room, last, root)  # reads the thread only
    assert await counts(bob, room, "b") == (1, 0)
    await receipt(bob, room, root, "main")
    assert await counts(bob, room, "c") == (0, 0)


async def test_a_leave_and_rejoin_resets_warm_counts(client: Client) -> None:
    alice, bob, room = await shared_room(client)
    await alice.send(room, "one")
    await alice.send(room, "two")
    assert await counts(bob, room, "a") == (2, 0)
    await bob.ok("POST", f"/_matrix/client/v3/rooms/{room}/leave", {})
    await bob.join(room)
    # Counted after the new membership: nothing yet, then the new message.
    assert await counts(bob, room, "b") == (0, 0)
    await alice.send(room, "three")
    assert await counts(bob, room, "c") == (1, 0)


async def test_a_new_invite_and_account_data_show_on_a_warm_connection(client: Client) -> None:
    alice, bob, room = await shared_room(client)
    request = {**body(), "extensions": {"account_data": {"enabled": True}}, "conn_id": "w"}
    first = await ok(bob, request)
    pos = (await ok(bob, request, first["pos"]))["pos"]
    other = await alice.create_room(preset="private_chat", invite=[bob.user_id])
    path = f"/_matrix/client/v3/user/{bob.user_id}/rooms/{room}/account_data/org.example"
    await bob.ok("PUT", path, {"n": 7})
    found = await ok(bob, request, pos)
    assert found["rooms"][other]["invite_state"]
    data = found["extensions"]["account_data"]["rooms"][room]
    assert {"type": "org.example", "content": {"n": 7}} in data


async def test_a_receipt_on_a_warm_timeline_shows_on_a_new_connection(client: Client) -> None:
    alice, bob, room = await shared_room(client)
    last = await bob.send(room, "read me")

    def readers(found: dict[str, Any]) -> list[str]:
        content = found["extensions"]["receipts"]["rooms"].get(room, {}).get("content", {})
        return sorted(content.get(last, {}).get("m.read", {}))

    assert readers(await ok(bob, {**body(), **RECEIPTS, "conn_id": "a"})) == []
    assert readers(await ok(bob, {**body(), **RECEIPTS, "conn_id": "b"})) == []
    await alice.ok("POST", f"/_matrix/client/v3/rooms/{room}/receipt/m.read/{last}", {})
    assert readers(await ok(bob, {**body(), **RECEIPTS, "conn_id": "c"})) == [alice.user_id]


async def test_counts_of_concurrent_senders_with_requests_between(client: Client) -> None:
    """Requests made while senders write (so counts are read and kept mid-way): the
    counts after the last send are all the messages."""
    alice, bob, room = await shared_room(client)
    others = [await client.register(f"sender{i}") for i in range(3)]
    for other in others:
        await other.join(room)
    per_sender = 8

    async def talk(user: User) -> None:
        for i in range(per_sender):
            await user.send(room, f"message {i}")

    async def look() -> None:
        for i in range(12):
            await counts(bob, room, f"mid{i}")

    await asyncio.gather(*(talk(u) for u in [alice, *others]), look())
    assert await counts(bob, room, "after") == (4 * per_sender, 0)


async def test_another_users_receipt_leaves_warm_counts_and_own_clears_them(
    client: Client,
) -> None:
    alice, bob, room = await shared_room(client)
    carol = await client.register("carol")
    await carol.join(room)
    await alice.send(room, "one")
    last = await alice.send(room, "two")
    assert await counts(bob, room, "a") == (2, 0)
    await carol.ok("POST", f"/_matrix/client/v3/rooms/{room}/receipt/m.read/{last}", {})
    assert await counts(bob, room, "b") == (2, 0)
    await bob.ok("POST", f"/_matrix/client/v3/rooms/{room}/receipt/m.read.private/{last}", {})
    assert await counts(bob, room, "c") == (0, 0)


async def test_warm_room_order_and_bump_stamps_follow_new_events(client: Client) -> None:
    """The rooms' latest positions brought forward from the events stored since they
    were read: a message moves its room first with a new bump stamp; a topic moves its
    room first too (latest activity) and leaves its bump stamp as it was."""
    alice = await client.register("alice")
    rooms = [await alice.create_room(name=f"r{i}") for i in range(3)]
    for room in rooms:
        await alice.send(room, "hello")

    async def listed(conn_id: str) -> tuple[list[str], dict[str, int]]:
        found = await ok(alice, {**body(), "conn_id": conn_id})
        ids = found["lists"]["all"]["ops"][0]["room_ids"]
        return ids, {r: found["rooms"][r]["bump_stamp"] for r in ids}

    order, stamps = await listed("a")
    assert order == rooms[::-1]
    await alice.send(rooms[0], "again")
    order, after_message = await listed("b")
    assert order[0] == rooms[0] and after_message[rooms[0]] > stamps[rooms[0]]
    await alice.ok("PUT", f"/_matrix/client/v3/rooms/{rooms[1]}/state/m.room.topic", {"topic": "t"})
    order, after_topic = await listed("c")
    assert order == [rooms[1], rooms[0], rooms[2]]
    assert after_topic[rooms[1]] == stamps[rooms[1]]
