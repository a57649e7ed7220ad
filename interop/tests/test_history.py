"""History a server did not see live: backfill after a late join, catch-up after downtime."""

from __future__ import annotations

import asyncio
import os

import pytest

from interop.tests.support import Cluster, Users, bodies, server_of, shared_room, wait_joined
from interop.wait import wait_until

#: How long C stays down in the catch-up scenario (the 20 messages are spread over it).
DOWNTIME_S = float(os.environ.get("KAIRAN_INTEROP_DOWNTIME_S", "0"))


async def test_backfill_after_join(cluster: Cluster, users: Users) -> None:
    alice = await users.on(cluster.a, "alice")
    bob = await users.on(cluster.b, "bob")
    room_id = await alice.create_room(preset="public_chat", name="history")
    expected = [f"backfill {i}" for i in range(1, 31)]
    for body in expected:
        await alice.send_text(room_id, body)

    await bob.join(room_id, via=[server_of(alice)])
    await wait_joined([alice, bob], room_id, [alice, bob])

    # B paginates /messages back to the room's creation: B must backfill from A.
    async def whole_history() -> list[str] | None:
        events = await bob.all_messages(room_id, page=10)
        seen = bodies(events, "backfill ")
        if seen != expected or not events or events[0].get("type") != "m.room.create":
            return None
        return seen

    await wait_until(whole_history, f"{bob.user_id} to paginate back to the room's creation")


@pytest.mark.parametrize("how", ["stop", "kill"])
async def test_server_that_was_down_catches_up(cluster: Cluster, users: Users, how: str) -> None:
    """C goes down (SIGTERM, or SIGKILL: a crash), misses 20 messages, and catches up.

    ``KAIRAN_INTEROP_DOWNTIME_S`` spreads the 20 messages over that long an outage (run by
    hand with 600 for the issue's "down for 10 minutes"): A's retries back off to their
    cap meanwhile, and C must still get every message after it returns."""
    harness = cluster.harness
    alice = await users.on(cluster.a, "alice")
    carol = await users.on(cluster.c, "carol")
    room_id = await shared_room(alice, [carol])

    if how == "kill":
        harness.kill(cluster.c)
    else:
        harness.stop(cluster.c)
    try:
        expected = [f"while C was down {i}" for i in range(1, 21)]
        for body in expected:
            await alice.send_text(room_id, body)
            await asyncio.sleep(DOWNTIME_S / len(expected))
    finally:
        harness.start(cluster.c)

    # A retries or backs off the destination that failed (Synapse: the transaction again
    # after about 4 s, 16 s, 60 s); a request from C (here carol typing, an EDU) also tells
    # A that C is back, as any activity of C's users would.
    await carol.typing(room_id, True)

    async def caught_up() -> list[str] | None:
        seen = bodies(await carol.all_messages(room_id, page=10), "while C was down ")
        return seen if seen == expected else None

    await wait_until(caught_up, f"{carol.user_id} to see the 20 messages sent while C was down")

    # And C takes part again: its new message reaches A.
    await carol.send_text(room_id, "C is back")

    async def seen_on_a() -> bool:
        return "C is back" in bodies((await alice.messages(room_id, limit=10))["chunk"])

    await wait_until(seen_on_a, f"{alice.user_id} to see C's message after the restart")
