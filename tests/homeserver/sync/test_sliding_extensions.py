"""Sliding sync extensions over real HTTP: to_device, e2ee, account_data, receipts, typing,
each scoped as Synapse scopes them."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.homeserver.client import Client, User
from tests.homeserver.keyhelpers import V3, Device, upload_keys
from tests.homeserver.sync.test_sliding_sync import body, ok


def ext(**extensions: Any) -> dict[str, Any]:
    return body(extensions=extensions)


async def shared_room(client: Client) -> tuple[User, User, str]:
    alice = await client.register("alice")
    bob = await client.register("bob")
    room = await alice.create_room(preset="public_chat")
    await bob.join(room)
    return alice, bob, room


async def test_to_device_since_and_limit(client: Client) -> None:
    alice, bob, _ = await shared_room(client)
    for i in range(3):
        await bob.ok(
            "PUT",
            f"{V3}/sendToDevice/m.custom/t{i}",
            {"messages": {alice.user_id: {alice.device_id: {"n": i}}}},
        )
    request = {"enabled": True, "limit": 2}
    first = await ok(alice, ext(to_device=request))
    got = first["extensions"]["to_device"]
    assert [e["content"]["n"] for e in got["events"]] == [0, 1]
    assert all(e["sender"] == bob.user_id and e["type"] == "m.custom" for e in got["events"])
    second = await ok(alice, ext(to_device={**request, "since": got["next_batch"]}), first["pos"])
    got = second["extensions"]["to_device"]
    assert [e["content"]["n"] for e in got["events"]] == [2]
    third = await ok(alice, ext(to_device={**request, "since": got["next_batch"]}), second["pos"])
    assert third["extensions"]["to_device"]["events"] == []
    # Bob's device has nothing; extensions off give no section.
    assert (await ok(bob, ext(to_device=request)))["extensions"]["to_device"]["events"] == []
    assert "to_device" not in (await ok(alice, body()))["extensions"]


async def test_to_device_wakes_a_long_poll(client: Client) -> None:
    alice, bob, _ = await shared_room(client)
    first = await ok(alice, ext(to_device={"enabled": True}))
    since = first["extensions"]["to_device"]["next_batch"]
    waiting = asyncio.create_task(
        ok(alice, ext(to_device={"enabled": True, "since": since}), first["pos"], timeout=20_000)
    )
    await asyncio.sleep(0.3)
    assert not waiting.done()
    await bob.ok(
        "PUT", f"{V3}/sendToDevice/m.custom/w", {"messages": {alice.user_id: {"*": {"x": 1}}}}
    )
    woken = await asyncio.wait_for(waiting, 10)
    assert woken["extensions"]["to_device"]["events"][0]["content"] == {"x": 1}


async def test_e2ee_counts_and_device_lists(client: Client) -> None:
    alice, bob, _ = await shared_room(client)
    device = Device(alice)
    await upload_keys(
        alice,
        device_keys=device.device_keys(),
        one_time_keys=device.one_time_keys(3),
        fallback_keys=device.fallback_keys(),
    )
    first = await ok(alice, ext(e2ee={"enabled": True}))
    e2ee = first["extensions"]["e2ee"]
    assert e2ee["device_one_time_keys_count"]["signed_curve25519"] == 3
    assert e2ee["device_unused_fallback_key_types"] == ["signed_curve25519"]
    assert "device_lists" not in e2ee  # only on incremental responses
    await upload_keys(bob, device_keys=Device(bob).device_keys())
    later = await ok(alice, ext(e2ee={"enabled": True}), first["pos"])
    assert later["extensions"]["e2ee"]["device_lists"]["changed"] == [bob.user_id]


async def test_account_data_global_and_scoped_rooms(client: Client) -> None:
    alice, _, room = await shared_room(client)
    other = await alice.create_room()
    base = f"{V3}/user/{alice.user_id}"
    await alice.ok("PUT", f"{base}/account_data/org.example.global", {"g": 1})
    await alice.ok("PUT", f"{base}/rooms/{room}/account_data/org.example.room", {"r": 1})
    await alice.ok("PUT", f"{base}/rooms/{other}/account_data/org.example.room", {"r": 2})
    only_room = {
        "lists": {"all": {"ranges": [[0, 0]], "timeline_limit": 0, "required_state": []}},
        "extensions": {"account_data": {"enabled": True}},
    }
    first = await ok(alice, only_room)
    data = first["extensions"]["account_data"]
    types = {e["type"] for e in data["global"]}
    assert {"org.example.global", "m.push_rules"} <= types
    [shown] = first["lists"]["all"]["ops"][0]["room_ids"]
    assert list(data["rooms"]) == [shown]  # only the room of the list's range
    # A list name the request has not, and no rooms: none (as Synapse reads the scoping,
    # "rooms" defaults to every room of the response, those of the lists' ranges too).
    scoped = {
        **only_room,
        "conn_id": "other",
        "extensions": {"account_data": {"enabled": True, "lists": ["x"], "rooms": []}},
    }
    assert (await ok(alice, scoped))["extensions"]["account_data"]["rooms"] == {}
    by_room = {
        **only_room,
        "conn_id": "third",
        "extensions": {"account_data": {"enabled": True, "lists": [], "rooms": [shown]}},
    }
    assert list((await ok(alice, by_room))["extensions"]["account_data"]["rooms"]) == [shown]
    # Incremental: only what changed.
    await alice.ok("PUT", f"{base}/account_data/org.example.global", {"g": 2})
    later = await ok(alice, only_room, first["pos"])
    assert later["extensions"]["account_data"] == {
        "global": [{"type": "org.example.global", "content": {"g": 2}}],
        "rooms": {},
    }


async def test_receipts_and_typing(client: Client) -> None:
    alice, bob, room = await shared_room(client)
    event_id = await bob.send(room, "read me")
    request = ext(receipts={"enabled": True}, typing={"enabled": True})
    first = await ok(alice, request)
    assert first["extensions"]["typing"] == {"rooms": {}}
    await bob.ok("POST", f"{V3}/rooms/{room}/receipt/m.read/{event_id}", {})
    await bob.ok(
        "PUT", f"{V3}/rooms/{room}/typing/{bob.user_id}", {"typing": True, "timeout": 30_000}
    )
    later = await ok(alice, request, first["pos"])
    receipt = later["extensions"]["receipts"]["rooms"][room]
    assert receipt["type"] == "m.receipt"
    assert bob.user_id in receipt["content"][event_id]["m.read"]
    typing = later["extensions"]["typing"]["rooms"][room]
    assert typing == {"type": "m.typing", "content": {"user_ids": [bob.user_id]}}
    # Private receipts of others are not shown.
    await bob.ok("POST", f"{V3}/rooms/{room}/receipt/m.read.private/{event_id}", {})
    again = await ok(alice, request, later["pos"])
    assert room not in again["extensions"]["receipts"]["rooms"]
    # A user not in the room gets nothing of it.
    mallory = await client.register("mallory")
    sub = {"room_subscriptions": {room: {"timeline_limit": 1, "required_state": []}}}
    spied = await ok(mallory, {**sub, "extensions": {"receipts": {"enabled": True}}})
    assert spied["rooms"] == {} and spied["extensions"]["receipts"]["rooms"] == {}


async def test_a_connection_with_only_extensions(client: Client) -> None:
    """Element X's second connection: to_device and e2ee, no lists nor subscriptions."""
    alice, bob, _ = await shared_room(client)
    request = {
        "conn_id": "encryption",
        "extensions": {"to_device": {"enabled": True}, "e2ee": {"enabled": True}},
    }
    first = await ok(alice, request)
    assert first["pos"].startswith("0/") and first["rooms"] == {} and "lists" not in first
    since = first["extensions"]["to_device"]["next_batch"]
    await bob.ok(
        "PUT", f"{V3}/sendToDevice/m.custom/e", {"messages": {alice.user_id: {"*": {"n": 1}}}}
    )
    later = await ok(
        alice,
        {**request, "extensions": {"to_device": {"enabled": True, "since": since}}},
        first["pos"],
    )
    assert [e["content"] for e in later["extensions"]["to_device"]["events"]] == [{"n": 1}]
    assert later["pos"].startswith("0/")
