"""``kairan bench search``: full-text search in Japanese, Kairan against Synapse.

Generates municipal-style Japanese messages (interop/bench/search_corpus.py) and loads
them into a Kairan node of the interop harness *straight into storage* (events and their
search index rows, through the same statements the node writes; many rooms, one user
joined to all), and the first ``synapse_messages`` of them into a Synapse node through its
Client-Server API (much slower, hence fewer).  Both nodes then run as processes on
loopback (HTTPS), and the same fixed queries are sent to each (``order_by: recent``,
limit 10, ``keys: [content.body]``), ``rounds`` times after one warm-up round.

Printed per query: the ground truth (messages holding the query, by substring over the
normalised texts), the hits found and the recall, and the latency p50/p99 of each node;
then the overall p50/p99 and the mean recall.  Kairan's hits are counted in its index
directly (its ``count`` in responses stops at 10,000); Synapse's are its ``count``.  Every
result returned is checked to hold the query (precision).
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import text as sql

from homeserver.config import load_config
from homeserver.node.app import build_services, close_services
from homeserver.storage import driver, search_text
from homeserver.storage import events as event_store
from homeserver.storage import search as search_store
from homeserver.storage.events import StoredEvent
from interop.bench.search_corpus import QUERIES, ground_truth, holds, messages
from interop.client import Client
from interop.harness import Harness, Node

PASSWORD = "bench-search-password"
BATCH = 5000


@dataclass(frozen=True)
class SearchBenchOptions:
    messages: int = 20_000
    synapse_messages: int = 2_000
    rooms: int = 20
    rounds: int = 5
    #: A PostgreSQL database URL for Kairan (an empty database); None: SQLite.
    postgres: str | None = None
    #: Leave Synapse out.
    kairan_only: bool = False


@dataclass
class NodeFigures:
    name: str
    corpus: int
    load_s: float = 0.0
    truth: dict[str, int] = field(default_factory=dict)
    hits: dict[str, int] = field(default_factory=dict)
    latencies: dict[str, list[float]] = field(default_factory=dict)
    wrong: int = 0
    returned: int = 0


async def load_kairan(directory: Path, options: SearchBenchOptions, fig: NodeFigures) -> None:
    """The corpus into the node's storage (in-process, before it is started); its own
    index's hit counts into ``fig.hits``."""
    services = await build_services(load_config(directory), fast_passwords=True)
    db = services.db
    try:
        user = await services.accounts.create_user("bench", PASSWORD)
        rooms = []
        for _ in range(options.rooms):
            room_id, _alias = await services.handler.create_room(user, {"preset": "private_chat"})
            room = await services.rooms.reader.room(room_id)
            assert room is not None
            rooms.append(room)
        started = time.perf_counter()
        texts = messages(options.messages)
        truth = dict.fromkeys(QUERIES, 0)
        done = 0
        while done < options.messages:
            chunk = [next(texts) for _ in range(min(BATCH, options.messages - done))]
            for query, found in ground_truth(chunk, QUERIES).items():
                truth[query] += found
            async with db.write() as conn:
                with contextlib.ExitStack() as positions:
                    rows = []
                    for i, text in enumerate(chunk, start=done):
                        room = rooms[i % len(rooms)]
                        pdu = {
                            "type": "m.room.message", "room_id": room.room_id, "sender": user,
                            "content": {"msgtype": "m.text", "body": text},
                            "depth": room.depth + 1 + i, "origin_server_ts": 1_700_000_000_000 + i,
                            "prev_events": [], "auth_events": [], "hashes": {}, "signatures": {},
                        }  # fmt: skip
                        position = positions.enter_context(db.stream.allocate())
                        rows.append(
                            StoredEvent(f"$bench{i}", position, room.room_id, pdu, room.state_group)
                        )
                    index = [r for e in rows if (r := search_store.row_of(e)) is not None]
                    await driver.run(
                        conn,
                        [
                            *event_store.event_statements(rows),
                            *search_store.index_statements(db.is_sqlite, index),
                        ],
                    )
            done += len(chunk)
        if not db.is_sqlite:  # the statistics autovacuum would gather later
            async with db.engine.begin() as conn:
                await conn.execute(sql("ANALYZE event_search"))
                await conn.execute(sql("ANALYZE events"))
        fig.load_s = time.perf_counter() - started
        fig.truth = truth
        room_ids = [r.room_id for r in rooms]
        async with db.read() as conn:
            for query in QUERIES:
                where = search_store.SearchWhere(
                    search_text.parse_query(query), room_ids, ("content.body",)
                )
                fig.hits[query] = await search_store.count(conn, where, 10**9)
    finally:
        await close_services(services)


async def load_synapse(node: Node, ca: Path, options: SearchBenchOptions, fig: NodeFigures) -> None:
    """The first messages of the corpus into Synapse over its API (8 senders at a time)."""
    async with Client(node.base_url, ca) as client:
        await client.register("bench", PASSWORD)
        rooms = [await client.create_room(preset="private_chat") for _ in range(options.rooms)]
        texts = list(messages(options.synapse_messages))
        fig.truth = ground_truth(texts, QUERIES)
        started = time.perf_counter()
        queue = list(enumerate(texts))

        async def sender() -> None:
            while queue:
                i, text = queue.pop(0)
                await client.send_text(rooms[i % len(rooms)], text)

        await asyncio.gather(*(sender() for _ in range(8)))
        fig.load_s = time.perf_counter() - started


def _body(query: str) -> dict[str, Any]:
    criteria = {
        "search_term": query,
        "keys": ["content.body"],
        "order_by": "recent",
        "filter": {"limit": 10},
    }
    return {"search_categories": {"room_events": criteria}}


async def measure(node: Node, ca: Path, rounds: int, fig: NodeFigures, count_hits: bool) -> None:
    async with Client(node.base_url, ca) as client:
        await client.login("bench", PASSWORD)
        for round_no in range(rounds + 1):
            for query in QUERIES:
                started = time.perf_counter()
                answer = await client.request("POST", "/search", _body(query))
                elapsed = (time.perf_counter() - started) * 1000
                if round_no == 0:  # warm-up
                    found = answer["search_categories"]["room_events"]
                    if count_hits:
                        fig.hits[query] = int(found.get("count", 0))
                    for result in found["results"]:
                        fig.returned += 1
                        if not holds(result["result"]["content"]["body"], query):
                            fig.wrong += 1
                    continue
                fig.latencies.setdefault(query, []).append(elapsed)


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] if ordered else 0.0


def _recall(fig: NodeFigures, query: str) -> float:
    truth = fig.truth.get(query, 0)
    return 1.0 if truth == 0 else min(fig.hits.get(query, 0), truth) / truth


def report(figures: list[NodeFigures]) -> str:
    lines = []
    head = f"{'query':<14}"
    for fig in figures:
        head += f" | {fig.name + ' truth':>14} {'hits':>7} {'recall':>6} {'p50':>7} {'p99':>7}"
    lines.append(head)
    for query in QUERIES:
        line = f"{query:<14}"
        for fig in figures:
            lat = fig.latencies.get(query, [])
            line += (
                f" | {fig.truth.get(query, 0):>14} {fig.hits.get(query, 0):>7}"
                f" {_recall(fig, query):>6.0%} {_pct(lat, 50):>6.1f}ms {_pct(lat, 99):>6.1f}ms"
            )
        lines.append(line)
    for fig in figures:
        every = [v for values in fig.latencies.values() for v in values]
        recall = statistics.mean(_recall(fig, q) for q in QUERIES)
        lines.append(
            f"{fig.name}: {fig.corpus} messages loaded in {fig.load_s:.1f}s;"
            f" search p50 {_pct(every, 50):.1f} ms, p99 {_pct(every, 99):.1f} ms"
            f" ({len(every)} searches); mean recall {recall:.1%};"
            f" results holding the query {fig.returned - fig.wrong}/{fig.returned}"
        )
    return "\n".join(lines)


def run(options: SearchBenchOptions, echo: Callable[[str], None]) -> list[NodeFigures]:
    harness = Harness(log_level="WARNING")
    db_name = "PostgreSQL" if options.postgres else "SQLite"
    kairan_fig = NodeFigures(f"kairan/{db_name}", options.messages)
    figures = [kairan_fig]
    try:
        kairan = harness.add_kairan("kairan")
        if options.postgres:
            path = kairan.directory / "kairan.yaml"
            config = yaml.safe_load(path.read_text(encoding="utf-8"))
            config["database"] = options.postgres
            path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        echo(f"loading {options.messages} messages into Kairan ({db_name}, storage)...")
        asyncio.run(load_kairan(kairan.directory, options, kairan_fig))
        synapse = None
        if not options.kairan_only:
            synapse = harness.add_synapse("synapse")
            figures.append(NodeFigures("synapse/SQLite", options.synapse_messages))
        harness.start_all()
        ca = harness.certs.ca
        if synapse is not None:
            echo(f"loading {options.synapse_messages} messages into Synapse (its API)...")
            asyncio.run(load_synapse(synapse, ca, options, figures[1]))
        echo("searching...")
        asyncio.run(measure(kairan, ca, options.rounds, kairan_fig, count_hits=False))
        if synapse is not None:
            asyncio.run(measure(synapse, ca, options.rounds, figures[1], count_hits=True))
    finally:
        harness.close()
    echo(report(figures))
    return figures
