"""Client transaction IDs: scoped to a device and an endpoint, kept across restarts for room
events, shared by concurrent retries (the spec's "Transaction identifiers")."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiohttp import web
from sqlalchemy import update

from homeserver.common.txncache import TransactionCache
from homeserver.node.app import build_services, make_app
from homeserver.rooms.housekeeping import TXN_LIFETIME_MS
from homeserver.storage.schema import event_txn_ids
from tests.homeserver.client import Client, User
from tests.homeserver.conftest import Node, start_node, stop_node

V3 = "/_matrix/client/v3"
MESSAGE = {"msgtype": "m.text", "body": "再送"}


async def messages(user: User, room_id: str) -> list[dict[str, object]]:
    history = await user.ok(
        "GET", f"{V3}/rooms/{room_id}/messages", params={"dir": "b", "limit": "100"}
    )
    return [e for e in history["chunk"] if e["type"] == "m.room.message"]


async def restart(node: Node, runner: web.AppRunner) -> web.AppRunner:
    """Stop the node and start it again on the same port, directory and database."""
    await stop_node(node, runner)
    node.services = await build_services(node.services.config, fast_passwords=True)
    runner = web.AppRunner(make_app(node.services))
    await runner.setup()
    port = int(node.server_name.rsplit(":", 1)[1])
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await node.services.federation.start()
    return runner


async def test_retry_after_restart_gets_the_stored_event(tmp_path: Path, db_url: str) -> None:
    node, runner = await start_node(tmp_path / "node", db_url)
    try:
        async with node.client() as client:
            alice = await client.register("alice")
            room_id = await alice.create_room()
            path = f"{V3}/rooms/{room_id}/send/m.room.message/before-restart"
            first = await alice.ok("PUT", path, MESSAGE)
            target = await alice.send(room_id, "消す")
            redact = f"{V3}/rooms/{room_id}/redact/{target}/before-restart"
            redaction = await alice.ok("PUT", redact, {})
        runner = await restart(node, runner)
        async with node.client() as client:
            again = User(client, alice.user_id, alice.token, alice.device_id)
            assert await again.ok("PUT", path, MESSAGE) == first
            assert await again.ok("PUT", redact, {}) == redaction
            assert [e["event_id"] for e in await messages(again, room_id)].count(
                first["event_id"]
            ) == 1
            synced = await again.sync()
            timeline = synced["rooms"]["join"][room_id]["timeline"]["events"]
            own = {e["event_id"]: e["unsigned"].get("transaction_id") for e in timeline}
            assert own[first["event_id"]] == "before-restart"
            assert own[redaction["event_id"]] == "before-restart"
    finally:
        await stop_node(node, runner)


async def test_concurrent_retries_create_one_event(node: Node, client: Client) -> None:
    alice = await client.register("alice")
    room_id = await alice.create_room()
    path = f"{V3}/rooms/{room_id}/send/m.room.message/together"
    answers = await asyncio.gather(*(alice.ok("PUT", path, MESSAGE) for _ in range(8)))
    assert len({a["event_id"] for a in answers}) == 1
    assert [e["event_id"] for e in await messages(alice, room_id)] == [answers[0]["event_id"]]
    # Concurrent requests with the same ID on different rooms are different transactions.
    rooms = [await alice.create_room() for _ in range(3)]
    sent = await asyncio.gather(
        *(alice.ok("PUT", f"{V3}/rooms/{r}/send/m.room.message/together", MESSAGE) for r in rooms)
    )
    assert len({s["event_id"] for s in sent}) == 3
    for room, answer in zip(rooms, sent, strict=True):
        assert [e["event_id"] for e in await messages(alice, room)] == [answer["event_id"]]


async def test_unusual_transaction_ids(node: Node, client: Client) -> None:
    """Long IDs and IDs with reserved characters are stored as sent, and still idempotent."""
    alice = await client.register("alice")
    room_id = await alice.create_room()
    for txn_id, quoted in (("x" * 2000, "x" * 2000), ("a/b c?d", "a%2Fb%20c%3Fd")):
        path = f"{V3}/rooms/{room_id}/send/m.room.message/{quoted}"
        first = await alice.ok("PUT", path, MESSAGE)
        assert await alice.ok("PUT", path, MESSAGE) == first
        event = await alice.ok("GET", f"{V3}/rooms/{room_id}/event/{first['event_id']}")
        assert event["unsigned"]["transaction_id"] == txn_id


async def test_to_device_transactions_are_per_endpoint(node: Node, client: Client) -> None:
    alice = await client.register("alice")
    bob = await client.register("bob")
    room_id = await bob.create_room()
    since = (await alice.sync())["next_batch"]
    # The spec's own example: one ID on /send and on /sendToDevice are two requests.
    await bob.ok("PUT", f"{V3}/rooms/{room_id}/send/m.room.message/shared", MESSAGE)
    body = {"messages": {alice.user_id: {alice.device_id: {"n": 1}}}}
    await bob.ok("PUT", f"{V3}/sendToDevice/m.custom/shared", body)
    # Retries arriving together are delivered once; another event type is another endpoint.
    retries = [bob.ok("PUT", f"{V3}/sendToDevice/m.custom/shared", body) for _ in range(5)]
    assert await asyncio.gather(*retries) == [{}] * 5
    await bob.ok("PUT", f"{V3}/sendToDevice/m.other/shared", body)
    synced = await alice.sync(since=since)
    assert [e["type"] for e in synced["to_device"]["events"]] == ["m.custom", "m.other"]


async def test_transaction_cache_shares_answers_and_forgets_failures() -> None:
    cache: TransactionCache[int] = TransactionCache()
    calls = 0
    started = asyncio.Event()
    release = asyncio.Event()

    async def work() -> int:
        nonlocal calls
        calls += 1
        started.set()
        await release.wait()
        return calls

    first = asyncio.create_task(cache.run("k", work))
    await started.wait()
    second = asyncio.create_task(cache.run("k", work))
    release.set()
    assert await first == await second == 1
    assert await cache.run("k", work) == 1 and calls == 1

    async def fail() -> int:
        raise RuntimeError("transient")

    with pytest.raises(RuntimeError):
        await cache.run("f", fail)
    assert await cache.run("f", work) == 2  # the failure was not remembered

    # A caller that goes away does not cancel the work another caller waits for.
    release.clear()
    started.clear()
    gone = asyncio.create_task(cache.run("c", work))
    await started.wait()
    waiting = asyncio.create_task(cache.run("c", work))
    gone.cancel()
    release.set()
    assert await waiting == 3

    # Entries expire after their lifetime.
    short: TransactionCache[int] = TransactionCache(lifetime_s=0.0)
    assert await short.run("k", work) == 4
    assert await short.run("k", work) == 5


async def test_transaction_ids_are_kept_a_day(node: Node, client: Client) -> None:
    """Housekeeping forgets transaction IDs older than 24 hours (as Synapse), so the table
    does not grow with every message ever sent; younger ones still deduplicate."""
    alice = await client.register("alice")
    room_id = await alice.create_room()
    old_path = f"{V3}/rooms/{room_id}/send/m.room.message/yesterday"
    new_path = f"{V3}/rooms/{room_id}/send/m.room.message/today"
    old = await alice.ok("PUT", old_path, MESSAGE)
    new = await alice.ok("PUT", new_path, MESSAGE)
    services = node.services
    async with services.db.write() as conn:
        await conn.execute(
            update(event_txn_ids)
            .where(event_txn_ids.c.event_id == old["event_id"])
            .values(created_ts=services.clock.now_ms() - TXN_LIFETIME_MS - 1000)
        )
    assert await services.housekeeping.run_once() == 1
    assert await services.housekeeping.run_once() == 0
    assert await alice.ok("PUT", new_path, MESSAGE) == new
    # A retry after a day is a new message, as in Synapse.
    assert (await alice.ok("PUT", old_path, MESSAGE))["event_id"] != old["event_id"]
