"""Ephemeral events across servers: typing notifications and read receipts."""

from __future__ import annotations

from interop.client import JsonDict
from interop.tests.support import Cluster, Users, shared_room, wait_for_message
from interop.wait import SyncWatcher


def _ephemeral(response: JsonDict, room_id: str, event_type: str) -> list[JsonDict]:
    room = response.get("rooms", {}).get("join", {}).get(room_id, {})
    events: list[JsonDict] = room.get("ephemeral", {}).get("events", [])
    return [e for e in events if e.get("type") == event_type]


def typing_users(response: JsonDict, room_id: str) -> set[str]:
    found: set[str] = set()
    for event in _ephemeral(response, room_id, "m.typing"):
        found |= set(event.get("content", {}).get("user_ids", []))
    return found


def readers(response: JsonDict, room_id: str, event_id: str) -> set[str]:
    found: set[str] = set()
    for event in _ephemeral(response, room_id, "m.receipt"):
        found |= set(event.get("content", {}).get(event_id, {}).get("m.read", {}))
    return found


async def test_typing_both_ways(cluster: Cluster, users: Users) -> None:
    alice = await users.on(cluster.a, "alice")
    bob = await users.on(cluster.b, "bob")
    room_id = await shared_room(alice, [bob])
    alice_sync = await SyncWatcher(alice).start()
    bob_sync = await SyncWatcher(bob).start()

    await bob.typing(room_id, True)
    await alice_sync.until(lambda r: bob.user_id in typing_users(r, room_id), "B typing on A")
    await alice.typing(room_id, True)
    await bob_sync.until(lambda r: alice.user_id in typing_users(r, room_id), "A typing on B")

    # Stopping is sent too: the next m.typing on A no longer lists bob.
    await bob.typing(room_id, False)
    await alice_sync.until(
        lambda r: (
            bool(_ephemeral(r, room_id, "m.typing")) and bob.user_id not in typing_users(r, room_id)
        ),
        "B stopped typing on A",
    )


async def test_read_receipts_both_ways(cluster: Cluster, users: Users) -> None:
    alice = await users.on(cluster.a, "alice")
    bob = await users.on(cluster.b, "bob")
    room_id = await shared_room(alice, [bob])
    alice_sync = await SyncWatcher(alice).start()
    bob_sync = await SyncWatcher(bob).start()

    from_a = await alice.send_text(room_id, "please read (A)")
    await wait_for_message(bob, room_id, "please read (A)")
    await bob.receipt(room_id, from_a)
    await alice_sync.until(lambda r: bob.user_id in readers(r, room_id, from_a), "B's receipt on A")

    from_b = await bob.send_text(room_id, "please read (B)")
    await wait_for_message(alice, room_id, "please read (B)")
    await alice.receipt(room_id, from_b)
    await bob_sync.until(lambda r: alice.user_id in readers(r, room_id, from_b), "A's receipt on B")
