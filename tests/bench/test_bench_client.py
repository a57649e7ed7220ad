"""Smoke test of ``kairan bench client`` against a test node, with tiny counts."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from interop.bench import client as bench_client
from tests.homeserver.conftest import Node, running_node


async def test_bench_prints_every_figure(node: Node) -> None:
    lines: list[str] = []
    options = bench_client.BenchOptions(
        node.base_url,
        users=2,
        messages=5,
        senders=3,
        per_sender=2,
        rooms=2,
        deliveries=3,
        pid=os.getpid(),
    )
    await bench_client.run(options, lines.append)
    text = "\n".join(lines)
    for figure in (
        "registration p50: ",
        "room create p50: ",
        "send latency (sequential, 5 messages): p50 ",
        "throughput (3 senders x 2 messages): ",
        "delivery latency (send to /sync, 3 messages): p50 ",
        "initial sync: first ",
        "server RSS: ",
    ):
        assert sum(line.startswith(figure) for line in lines) == 1, (figure, text)
    assert "MiB (peak" in text
    # It really did the work: 2 + 2 + 3 accounts, 3 rooms, 5 + 6 + 3 messages.
    users = await node.services.admin.list_users()
    assert len(users) == 7
    rooms = await node.services.admin.list_rooms()
    assert len(rooms) == 3
    bench_room = next(r for r in rooms if r["name"] == "bench")
    assert bench_room["joined_members"] == 7


async def test_bench_with_registration_token(tmp_path: Path, db_url: str) -> None:
    """With a token the bench completes the token stage; without one it says what to do."""
    async with running_node(tmp_path / "tokens", db_url, registration_requires_token=True) as node:
        await bench_with_token(node)


async def bench_with_token(node: Node) -> None:
    lines: list[str] = []
    tiny = bench_client.BenchOptions(
        node.base_url, users=0, messages=1, senders=1, per_sender=1, rooms=0, deliveries=1
    )
    with pytest.raises(bench_client.BenchError, match="--registration-token"):
        await bench_client.run(tiny, lines.append)
    made = await node.services.tokens.create_registration_token("bench-token")
    with_token = dataclasses.replace(tiny, registration_token="bench-token")
    await bench_client.run(with_token, lines.append)
    assert (await node.services.tokens.get_registration_token(made["token"]))["completed"] == 3
    assert any(line.startswith("server RSS: not measured") for line in lines)


async def test_bench_unreachable_server() -> None:
    with pytest.raises(bench_client.BenchError, match="127.0.0.1:1"):
        await bench_client.run(bench_client.BenchOptions("http://127.0.0.1:1"), print)


def test_percentile() -> None:
    samples = [float(i) for i in range(1, 101)]
    assert bench_client.percentile(samples, 50) == 50.0
    assert bench_client.percentile(samples, 99) == 99.0
    assert bench_client.percentile([3.0], 99) == 3.0
