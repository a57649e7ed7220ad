"""Prometheus metrics on their own listener: requests, latency, events, sync waiters, process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from homeserver.admin.metrics import METRICS, NodeMetrics, start_listener
from homeserver.config import ConfigError, Metrics
from tests.homeserver.client import Client
from tests.homeserver.conftest import Node, free_port, start_node, stop_node

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(url: str) -> Samples:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = await response.text()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
async def metered(tmp_path: Path, db_url: str) -> AsyncIterator[tuple[Node, str]]:
    port = free_port()
    node, runner = await start_node(
        tmp_path / "node", db_url, metrics=Metrics(enabled=True, host="127.0.0.1", port=port)
    )
    metrics_runner = await start_listener(runner.app[METRICS], "127.0.0.1", port)
    try:
        yield node, f"http://127.0.0.1:{port}/metrics"
    finally:
        await metrics_runner.cleanup()
        await stop_node(node, runner)


async def test_counters_move(metered: tuple[Node, str]) -> None:
    node, url = metered
    before = await scrape(url)
    assert value(before, "process_resident_memory_bytes") > 0
    assert value(before, "kairan_sync_waiters") == 0

    async with node.client() as client:
        alice = await client.register("alice")
        bob = await client.register("bob")
        room_id = await alice.create_room()
        await alice.invite(room_id, bob.user_id)
        await bob.join(room_id)
        since = (await bob.sync())["next_batch"]
        # Bob long-polls; the gauge sees him waiting until Alice speaks.
        waiting = asyncio.create_task(bob.sync(since=since, timeout=30_000))
        for _ in range(500):
            if node.services.notifier.waiting:
                break
            await asyncio.sleep(0.01)
        during = await scrape(url)
        assert value(during, "kairan_sync_waiters") == 1
        for i in range(3):
            await alice.send(room_id, f"message {i}")
        woken = await waiting
        assert room_id in woken["rooms"]["join"]
        missing = await client.request("GET", "/_matrix/client/v3/nowhere")
        assert missing.status == 404

    after = await scrape(url)
    send = "/_matrix/client/v3/rooms/{room_id}/send/{event_type}/{txn_id}"
    assert value(after, "kairan_http_requests_total", method="PUT", route=send, status="200") == 3
    assert (
        value(
            after,
            "kairan_http_requests_total",
            method="POST",
            route="/_matrix/client/v3/register",
            status="200",
        )
        == 2
    )
    assert (
        value(after, "kairan_http_requests_total", method="GET", route="unmatched", status="404")
        == 1
    )
    assert value(after, "kairan_http_request_duration_seconds_count", method="PUT", route=send) == 3
    assert value(after, "kairan_events_persisted_total", type_class="message") == 3
    # create, power levels, join rules, history visibility... and the two joins, an invite.
    assert value(after, "kairan_events_persisted_total", type_class="state") >= 3
    assert value(after, "kairan_events_persisted_total", type_class="membership") == 3
    assert value(after, "kairan_sync_waiters") == 0
    assert value(after, "process_cpu_seconds_total") > 0


async def test_send_route_label(metered: tuple[Node, str]) -> None:
    """User IDs, room IDs and transaction IDs never become label values."""
    node, url = metered
    async with node.client() as client:
        alice = await client.register("alice")
        room_id = await alice.create_room()
        await alice.send(room_id, "hello")
    text_samples = await scrape(url)
    labels = {v for (_, ls) in text_samples for (_, v) in ls}
    assert not any(room_id in label or alice.user_id in label for label in labels)


async def test_metrics_off_by_default(node: Node, client: Client) -> None:
    assert node.services.config.metrics.enabled is False
    await client.register("alice")
    assert not any(
        isinstance(getattr(listener, "__self__", None), NodeMetrics)
        for listener in node.services.rooms.listeners
    )


async def test_port_in_use(metered: tuple[Node, str]) -> None:
    node, url = metered
    port = int(url.split(":")[2].split("/")[0])
    with pytest.raises(ConfigError, match=f"cannot listen for metrics on 127.0.0.1:{port}"):
        await start_listener(NodeMetrics(node.services.notifier), "127.0.0.1", port)


async def test_nodes_have_their_own_registries(metered: tuple[Node, str], tmp_path: Path) -> None:
    """Two nodes in one process: requests to one never show in the other's metrics."""
    _, url = metered
    other_port = free_port()
    other, runner = await start_node(
        tmp_path / "other",
        f"sqlite+aiosqlite:///{tmp_path / 'other.db'}",
        metrics=Metrics(enabled=True, host="127.0.0.1", port=other_port),
    )
    other_metrics = await start_listener(runner.app[METRICS], "127.0.0.1", other_port)
    try:
        async with other.client() as client:
            await client.register("alice")
        register = {"method": "POST", "route": "/_matrix/client/v3/register", "status": "200"}
        theirs = await scrape(f"http://127.0.0.1:{other_port}/metrics")
        assert value(theirs, "kairan_http_requests_total", **register) == 1
        mine = await scrape(url)
        assert value(mine, "kairan_http_requests_total", **register) == 0
    finally:
        await other_metrics.cleanup()
        await stop_node(other, runner)
