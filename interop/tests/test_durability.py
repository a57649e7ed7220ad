"""A sending server that crashes (SIGKILL) with a full outbound queue loses nothing."""

from __future__ import annotations

from interop.client import Client, JsonDict
from interop.tests.support import Cluster, Users, bodies, shared_room
from interop.wait import wait_until


async def _timeline_since(client: Client, room_id: str, since: str) -> tuple[list[JsonDict], str]:
    """The room's new timeline events in one incremental /sync (no backfill involved)."""
    response = await client.sync(
        since, timeout_ms=1000, filter_json={"room": {"timeline": {"limit": 100}}}
    )
    room = response.get("rooms", {}).get("join", {}).get(room_id, {})
    return room.get("timeline", {}).get("events", []), response.get("next_batch", since)


async def test_sender_killed_with_a_full_queue_loses_nothing(
    cluster: Cluster, users: Users
) -> None:
    """B goes down; A accepts 20 messages (each answered with an event ID), which wait in
    A's outbound queue while A retries B; A is then killed (SIGKILL: no clean shutdown).
    After both restart, A still has all 20 in order, and B gets all 20.  With Kairan as
    A they must come from A's persisted queue: B's user watches with incremental /sync
    (which never backfills) and A sends nothing new before they arrive."""
    harness = cluster.harness
    alice = await users.on(cluster.a, "alice")
    bob = await users.on(cluster.b, "bob")
    room_id = await shared_room(alice, [bob])
    since = (await bob.sync(None, timeout_ms=0))["next_batch"]

    expected = [f"queued before the crash {i}" for i in range(1, 21)]
    harness.stop(cluster.b)
    try:
        accepted = [await alice.send_text(room_id, body) for body in expected]
    finally:
        harness.kill(cluster.a)
        harness.start(cluster.b)
        harness.start(cluster.a)
    assert len(set(accepted)) == len(expected)

    # Nothing A had accepted is lost, and the order holds.
    async def all_on_a() -> list[str] | None:
        seen = bodies(await alice.all_messages(room_id, page=10), "queued before the crash ")
        return seen if seen == expected else None

    await wait_until(all_on_a, f"{alice.user_id} to see the 20 messages after A's crash")

    # B's user typing tells A that B is back (as any activity of B would); A then
    # delivers what its queue held.
    await bob.typing(room_id, True)
    if cluster.a.kind != "kairan":
        # Synapse catches a destination up after a restart when it next has an event for
        # it, and then sends only the newest event of each room, leaving the rest to the
        # receiver (get_missing_events, backfill): a new message from A, then B's user
        # sees all 20 by paginating, which may backfill.
        await alice.send_text(room_id, "after the restart")

        async def all_paginated() -> bool:
            found = bodies(await bob.all_messages(room_id, page=10), "queued before the crash ")
            return found == expected

        await wait_until(all_paginated, f"{bob.user_id} to see A's 20 queued messages")
        return

    received: dict[str, str] = {}

    async def all_on_b() -> bool:
        nonlocal since
        events, since = await _timeline_since(bob, room_id, since)
        for event in events:
            body = event.get("content", {}).get("body")
            if isinstance(body, str) and body.startswith("queued before the crash "):
                received[event["event_id"]] = body
        return set(received) == set(accepted)

    await wait_until(all_on_b, f"{bob.user_id} to receive A's 20 queued messages via /sync")
    assert sorted(received.values()) == sorted(expected)
