"""Push actions in a room with 1,000 local members: every member but the sender gets a
notification row per message, and the cost is measured and printed (never asserted: the
machine is shared) as send latency with and without push evaluation (done inside the
event's transaction) and the evaluation's time per event.  Run with ``-s`` to see the figures."""

from __future__ import annotations

import statistics
import time
from urllib.parse import quote

from homeserver.storage import push as push_store
from tests.homeserver.client import Client
from tests.homeserver.conftest import Node

MEMBERS = 1000
MESSAGES = 60


async def _send_many(alice_send: object, count: int) -> list[float]:
    assert callable(alice_send)
    took = []
    for _ in range(count):
        started = time.perf_counter()
        await alice_send()
        took.append((time.perf_counter() - started) * 1000)
    return took


async def test_a_thousand_local_members(node: Node, client: Client, db_backend: str) -> None:
    services = node.services
    alice = await client.register("alice")
    room_id = await alice.create_room(preset="public_chat")
    members = [f"@m{i:04d}:{node.server_name}" for i in range(MEMBERS - 1)]
    for user_id in members:
        await services.rooms.send(
            room_id, user_id, "m.room.member", {"membership": "join"}, state_key=user_id
        )
    room = await services.rooms.require_room(room_id)
    assert len(room.joined()) == MEMBERS
    # One of them has their own rules (compiled once, cached).
    await services.push_rules.put_rule(
        members[0], "override", "quiet", {"conditions": [], "actions": []}, None, None
    )

    counter = iter(range(10**6))

    async def send() -> None:
        path = f"/_matrix/client/v3/rooms/{quote(room_id, safe='')}/send/m.room.message/s{next(counter)}"
        await alice.ok("PUT", path, {"msgtype": "m.text", "body": "お知らせ"})

    actions = services.push_actions
    services.rooms.hooks.remove(actions)
    without = await _send_many(send, MESSAGES)
    services.rooms.hooks.append(actions)
    busy, done = actions.busy_ms, actions.events_done
    started = time.perf_counter()
    with_push = await _send_many(send, MESSAGES)
    elapsed = time.perf_counter() - started
    per_event = (actions.busy_ms - busy) / (actions.events_done - done)

    async with services.db.read() as conn:
        counts = [
            await push_store.unread_counts(conn, room_id, m, 0) for m in (members[1], members[-1])
        ]
        quiet = await push_store.unread_counts(conn, room_id, members[0], 0)
        own = await push_store.unread_counts(conn, room_id, alice.user_id, 0)
    # Only the messages sent while push evaluation was on count; the sender and the member
    # whose rule says nothing get none.
    assert counts == [(MESSAGES, 0), (MESSAGES, 0)]
    assert quiet == (0, 0) and own == (0, 0)
    print(
        f"\n[{db_backend}] room of {MEMBERS} local members, {MESSAGES} sequential sends:"
        f" send p50 {statistics.median(without):.1f} ms without push evaluation,"
        f" {statistics.median(with_push):.1f} ms with it"
        f" (p90 {sorted(with_push)[int(MESSAGES * 0.9)]:.1f} ms);"
        f" push actions {per_event:.1f} ms per event ({MEMBERS - 1} rows),"
        f" {MESSAGES / elapsed:.0f} events/s end to end"
    )
