"""``kairan bench consortium``: what closed federation costs, and how fast a change spreads.

1. The peer policy's cost per inbound request: the consortium feature's ``inbound(origin)``
   (as the federation server asks it for every request) with a document of N members, for
   a member and for a non-member, and the pinned-key lookup (µs per call).
2. Propagation: 4 nodes (in this process, over TLS on loopback, SQLite) in one
   consortium; a new version applied on one node, until it is in force on all 4: through
   the node's service (push to the members), and as ``kairan consortium apply`` does it
   (stored in the database; the node reads it within ``poll_seconds``, 2 s, then pushes).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import socket
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from federation.signing import SigningKey, sign_json, signing_key_from_seed
from homeserver.common.clock import Clock
from homeserver.config import load_config
from homeserver.config.listeners import FeatureSettings
from homeserver.municipal.consortium import document
from homeserver.municipal.consortium.policy import ConsortiumPeers
from homeserver.municipal.consortium.service import ConsortiumService, store_if_valid
from homeserver.node.app import (
    build_services,
    close_services,
    make_app,
    ssl_context,
    start_features,
)
from homeserver.node.services import NodeServices
from homeserver.node.setup import init_node

DAY_MS = 86_400_000
ADMINS = [
    signing_key_from_seed(hashlib.sha256(f"bench{i}".encode()).digest(), f"b{i}") for i in (1, 2)
]


def _signed(obj: dict[str, Any]) -> dict[str, Any]:
    for admin in ADMINS:
        obj = sign_json(obj, obj["id"], admin)
    return obj


def _first(members: dict[str, SigningKey]) -> dict[str, Any]:
    obj = document.new_draft(
        "bench", "ベンチ", "べんち", {k.key_id: k.public_key_base64 for k in ADMINS}, 2,
        Clock().now_ms() + 30 * DAY_MS,
    )  # fmt: skip
    for server, key in members.items():
        obj = document.with_member(obj, server, {key.key_id: key.public_key_base64}, None)
    return _signed(obj)


def _next(obj: dict[str, Any], extra: str) -> dict[str, Any]:
    draft = document.start_edit(obj, signed=True)
    key = ADMINS[0]
    return _signed(document.with_member(draft, extra, {key.key_id: key.public_key_base64}, None))


def policy_cost(members: int, calls: int) -> dict[str, float]:
    """µs per call of the peer policy (member, non-member) and of the pinned-key lookup."""

    async def run() -> dict[str, float]:
        service = ConsortiumService(None, Clock(), "self.example.jp", closed=True)
        keys = {f"city{i}.example.jp": ADMINS[0] for i in range(members)}
        doc = document.parse(_first(keys))
        await service._install(doc, "bench")
        peers = ConsortiumPeers(service)
        member, stranger = f"city{members // 2}.example.jp", "elsewhere.example.jp"
        results = {}
        for label, fn in (
            ("member", lambda: peers.inbound(member)),
            ("non-member", lambda: peers.inbound(stranger)),
            ("pinned keys", lambda: service.pinned(member)),
        ):
            started = time.perf_counter()
            for _ in range(calls):
                fn()
            results[label] = (time.perf_counter() - started) / calls * 1e6
        return results

    return asyncio.run(run())


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _start(directory: Path) -> tuple[NodeServices, web.AppRunner]:
    port = _port()
    init_node(f"127.0.0.1:{port}", directory, tls_self_signed=True)
    loaded = load_config(directory)
    config = dataclasses.replace(
        loaded,
        federation=dataclasses.replace(loaded.federation, verify_tls=False),
        features=(FeatureSettings("consortium", {"refresh_seconds": 3600}),),
    )
    services = await build_services(config, fast_passwords=True)
    runner = web.AppRunner(make_app(services))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=ssl_context(config)).start()
    await services.federation.start()
    await start_features(services)
    return services, runner


def _service(services: NodeServices) -> ConsortiumService:
    found: ConsortiumService = services.extensions.provided["consortium.service"]
    return found


async def _until_all(nodes: list[NodeServices], version: int, started: float) -> float:
    while not all(
        (d := _service(n).consortium("bench")) is not None and d.version >= version for n in nodes
    ):
        if time.perf_counter() - started > 30:
            raise RuntimeError(f"version {version} not in force on every node within 30 s")
        await asyncio.sleep(0.005)
    return time.perf_counter() - started


async def propagation(rounds: int) -> dict[str, list[float]]:
    with tempfile.TemporaryDirectory(prefix="kairan-bench-consortium-") as tmp:
        started_nodes = [await _start(Path(tmp) / f"n{i}") for i in range(4)]
        nodes = [s for s, _ in started_nodes]
        try:
            current = _first({n.config.server_name: n.signing_key for n in nodes})
            for node in nodes:
                await _service(node).apply(current, "bench")
            times: dict[str, list[float]] = {"service": [], "cli": []}
            for i in range(rounds):
                for how in ("service", "cli"):
                    current = _next(current, f"extra{how}{i}.example.jp")
                    version = current["version"]
                    begun = time.perf_counter()
                    if how == "service":
                        await _service(nodes[0]).apply(current, "bench")
                    else:
                        await store_if_valid(nodes[0].db, current, Clock().now_ms(), "cli")
                    times[how].append(await _until_all(nodes, version, begun))
            return times
        finally:
            for services, runner in started_nodes:
                await runner.cleanup()
                await close_services(services)


def main(members: int, rounds: int) -> None:
    costs = policy_cost(members, 200_000)
    print(f"peer policy, {members} members (µs per inbound request):")
    for label, micro in costs.items():
        print(f"  {label:12s} {micro:6.2f} µs")
    times = asyncio.run(propagation(rounds))
    print(f"a new version applied on one node until in force on 4 nodes ({rounds} rounds):")
    for how, label in (("service", "applied by the node"), ("cli", "kairan consortium apply")):
        values = times[how]
        print(
            f"  {label:24s} median {statistics.median(values) * 1000:7.1f} ms, "
            f"max {max(values) * 1000:7.1f} ms"
        )
