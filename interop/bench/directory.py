"""``kairan bench directory``: organisation directory search over 50,000 staff on 4 nodes.

Starts four nodes on loopback (HTTPS, the directory feature, each the others' search peer),
imports 12,500 generated staff into each through the CSV import (the code path of
``kairan org import``), then times searches over the client endpoint: local (this node's
staff, ``"federated": false``) and federated (this node and its three peers, merged), and
prints p50 and p99 of each.  SQLite by default; ``--postgres URL`` runs the nodes on four
PostgreSQL databases made (and dropped) on that server.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import socket
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from homeserver.config import LoginLimits, Rate, RateLimit, load_config
from homeserver.config.listeners import FeatureSettings
from homeserver.node.app import build_services, close_services, make_app, start_features
from homeserver.node.listeners import ssl_context
from homeserver.node.setup import init_node

SEARCH = "/_matrix/client/unstable/jp.kairan/directory/search"
SURNAMES = [
    ("佐藤", "さとう"), ("鈴木", "すずき"), ("高橋", "たかはし"), ("田中", "たなか"),
    ("伊藤", "いとう"), ("渡辺", "わたなべ"), ("山本", "やまもと"), ("中村", "なかむら"),
    ("小林", "こばやし"), ("加藤", "かとう"), ("吉田", "よしだ"), ("山田", "やまだ"),
    ("佐々木", "ささき"), ("山口", "やまぐち"), ("松本", "まつもと"), ("井上", "いのうえ"),
    ("木村", "きむら"), ("林", "はやし"), ("斎藤", "さいとう"), ("清水", "しみず"),
]  # fmt: skip
GIVEN = [
    ("太郎", "たろう"), ("花子", "はなこ"), ("一郎", "いちろう"), ("美咲", "みさき"),
    ("健", "けん"), ("陽子", "ようこ"), ("誠", "まこと"), ("さくら", "さくら"),
    ("翔太", "しょうた"), ("直子", "なおこ"), ("大輔", "だいすけ"), ("真由美", "まゆみ"),
]  # fmt: skip
DEPARTMENTS = [
    "総務部/総務課", "総務部/情報政策課", "企画部/企画課", "市民部/市民課", "市民部/税務課",
    "保健福祉部/福祉課", "保健福祉部/健康推進課", "建設部/道路課", "建設部/都市計画課",
    "水道部/水道課", "教育部/学校教育課", "教育部/生涯学習課", "消防本部/警防課",
]  # fmt: skip
TITLES = ["課長", "課長補佐", "係長", "主任", "主査", "主事", "技師", "保健師", "部長"]
#: Four municipalities (local government codes with their check digits).
TOWNS = [("012238", "根室市"), ("016918", "別海町"), ("016926", "中標津町"), ("016934", "標津町")]
QUERIES = [
    "佐藤", "すずき", "タナカ", "山田 太郎", "やまもとさくら", "総務課", "じょうほうせいさく",
    "課長補佐", "保健師", "016918", "道路", "しみず まこと", "消防", "企画 係長", "ﾜﾀﾅﾍﾞ",
]  # fmt: skip


def staff_csv(town: int, count: int) -> bytes:
    code, name = TOWNS[town]
    rng = random.Random(town)
    lines = ["団体コード,団体名,部署,氏名,よみ,役職,内線,Matrix ID"]
    for i in range(count):
        (s, sr), (g, gr) = rng.choice(SURNAMES), rng.choice(GIVEN)
        org = f"{name}役所" if i % 5 else f"{name}教育委員会"
        lines.append(
            f"{code},{org},{rng.choice(DEPARTMENTS)},{s} {g},{sr} {gr},{rng.choice(TITLES)},"
            f"{1000 + i % 9000},staff{i}"
        )
    return ("\n".join(lines) + "\n").encode("utf-8")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclasses.dataclass
class BenchNode:
    server_name: str
    base_url: str
    services: Any
    token: str = ""


@asynccontextmanager
async def running_node(
    directory: Path, port: int, database: str | None, peers: list[str]
) -> AsyncIterator[BenchNode]:
    server_name = f"127.0.0.1:{port}"
    init_node(server_name, directory, enable_registration=True, tls_self_signed=True)
    loaded = load_config(directory)
    config = dataclasses.replace(
        loaded,
        database=database or loaded.database,
        federation=dataclasses.replace(loaded.federation, verify_tls=False),
        rate_limit=RateLimit(per_second=100_000, burst=100_000),
        login_limits=LoginLimits(*(Rate(10_000, 10_000),) * 3),
        features=(FeatureSettings("directory", {"search_peers": peers}),),
    )
    services = await build_services(config, fast_passwords=True)
    runner = web.AppRunner(make_app(services))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=ssl_context(config)).start()
    await services.federation.start()
    await start_features(services)
    try:
        yield BenchNode(server_name, f"https://{server_name}", services)
    finally:
        await runner.cleanup()
        await close_services(services)


def directory_service(node: BenchNode) -> Any:
    """The directory feature's service of a node (its user directory source knows it)."""
    return node.services.extensions.user_directory_sources[0].service


async def timed(
    session: aiohttp.ClientSession, node: BenchNode, rounds: int, federated: bool
) -> tuple[list[float], int]:
    samples: list[float] = []
    found = 0
    headers = {"Authorization": f"Bearer {node.token}"}
    for i in range(rounds):
        body = {"search_term": QUERIES[i % len(QUERIES)], "limit": 20, "federated": federated}
        started = time.perf_counter()
        async with session.post(node.base_url + SEARCH, json=body, headers=headers) as response:
            answer = await response.json()
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status == 200, answer
        assert "partial" not in answer, answer
        found += len(answer["results"])
    return samples, found


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def measure(
    staff_per_node: int, rounds: int, postgres: str | None, nodes: int = 4
) -> dict[str, Any]:
    ports = [free_port() for _ in range(nodes)]
    names = [f"127.0.0.1:{p}" for p in ports]
    databases = await _postgres_databases(postgres, nodes) if postgres else [None] * nodes
    try:
        with tempfile.TemporaryDirectory(prefix="kairan-bench-directory-") as tmp:
            async with AsyncExitStack() as stack:
                started: list[BenchNode] = []
                for i, port in enumerate(ports):
                    peers = [n for n in names if n != names[i]]
                    node = await stack.enter_async_context(
                        running_node(Path(tmp) / f"n{i}", port, databases[i], peers)
                    )
                    started.append(node)
                began = time.perf_counter()
                for i, node in enumerate(started):
                    report = await directory_service(node).import_csv(
                        staff_csv(i, staff_per_node), dry_run=False
                    )
                    assert not report.errors, report.errors[:3]
                import_s = time.perf_counter() - began
                session = await stack.enter_async_context(
                    aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=False))
                )
                for node in started:
                    user = await node.services.accounts.create_user("bench", "bench password")
                    node.token = (await node.services.accounts.login(user, None, None, None))[0]
                await timed(session, started[0], 10, True)  # warm up
                local, local_found = await timed(session, started[0], rounds, False)
                federated, fed_found = await timed(session, started[0], rounds, True)
    finally:
        if postgres:
            await _postgres_databases(postgres, nodes, drop=True)
    return {
        "database": "PostgreSQL" if postgres else "SQLite",
        "nodes": nodes,
        "staff": staff_per_node * nodes,
        "import_s": import_s,
        "local": local,
        "federated": federated,
        "local_found": local_found / rounds,
        "federated_found": fed_found / rounds,
    }


async def _postgres_databases(url: str, count: int, *, drop: bool = False) -> list[str | None]:
    import asyncpg  # type: ignore[import-untyped]
    from sqlalchemy.engine import make_url

    base = make_url(url)
    admin = base.set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(admin)
    made: list[str | None] = []
    try:
        for i in range(count):
            name = f"kairan_bench_directory_{i}"
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            if not drop:
                await conn.execute(f'CREATE DATABASE "{name}"')
            made.append(
                base.set(drivername="postgresql+asyncpg", database=name).render_as_string(
                    hide_password=False
                )
            )
    finally:
        await conn.close()
    return made


def report(figures: dict[str, Any]) -> str:
    local, federated = figures["local"], figures["federated"]
    return "\n".join(
        [
            f"Kairan directory search ({figures['database']}): {figures['staff']:,} staff on "
            f"{figures['nodes']} nodes ({figures['staff'] // figures['nodes']:,} each)",
            f"  import (CSV, all nodes)   {figures['import_s']:8.1f} s",
            f"  local search      p50 {percentile(local, 50):7.1f} ms   "
            f"p99 {percentile(local, 99):7.1f} ms   mean {statistics.mean(local):6.1f} ms   "
            f"({len(local)} queries, {figures['local_found']:.1f} results each)",
            f"  federated search  p50 {percentile(federated, 50):7.1f} ms   "
            f"p99 {percentile(federated, 99):7.1f} ms   mean {statistics.mean(federated):6.1f} ms"
            f"   ({len(federated)} queries, {figures['federated_found']:.1f} results each)",
        ]
    )


def main(staff: int, rounds: int, postgres: str | None) -> None:
    print(report(asyncio.run(measure(staff // 4, rounds, postgres))))
