"""Fixtures for the node's tests: a real node on loopback HTTP with a real database."""

from __future__ import annotations

import contextlib
import dataclasses
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import text

from homeserver.config import LoginLimits, Rate, RateLimit, load_config
from homeserver.node.app import (
    SHUTDOWN_GRACE_SECONDS,
    build_services,
    close_services,
    make_app,
    ssl_context,
    start_features,
)
from homeserver.node.services import NodeServices
from homeserver.node.setup import init_node
from homeserver.storage.database import open_database
from homeserver.storage.schema import metadata
from tests.homeserver.client import Client
from tests.homeserver.openapi import ClientServerSpec, ValidatingClient

#: Test nodes log in (and download media) as often as their tests need (tests of the
#: limits set their own).
UNLIMITED_LOGINS = LoginLimits(*(Rate(10_000, 10_000),) * 3)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _clean_pg(url: str) -> None:
    # A clean database for every test: migrate once, then empty every table; the tables
    # a test's features made (and their version tables) go, as on a node without them.
    db = await open_database(url)
    try:
        async with db.engine.begin() as conn:
            names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
            await conn.execute(text(f"TRUNCATE {names}"))
            core = {t.name for t in metadata.sorted_tables} | {"alembic_version"}
            found = await conn.execute(
                text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            )
            for (table,) in found.all():
                if table not in core:
                    await conn.execute(text(f'DROP TABLE "{table}" CASCADE'))
    finally:
        await db.close()


async def _db_url(
    db_backend: str, tmp_path: Path, request: pytest.FixtureRequest, name: str
) -> str:
    if db_backend == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / (name + '.db')}"
    fixture = {"kairan": "pg_database", "kairan_b": "pg_database_b", "kairan_c": "pg_database_c"}[
        name
    ]
    url: str = request.getfixturevalue(fixture)
    await _clean_pg(url)
    return url


@pytest.fixture
async def db_url(db_backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    return await _db_url(db_backend, tmp_path, request, "kairan")


@pytest.fixture
async def db_url_b(db_backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    return await _db_url(db_backend, tmp_path, request, "kairan_b")


@pytest.fixture
async def db_url_c(db_backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    return await _db_url(db_backend, tmp_path, request, "kairan_c")


@dataclasses.dataclass
class Node:
    server_name: str
    base_url: str
    services: NodeServices
    directory: Path

    def client(self) -> Client:
        return Client(self.base_url)


async def start_node(
    directory: Path,
    db_url: str,
    *,
    tls: bool = False,
    host: str = "127.0.0.1",
    **config_changes: Any,
) -> tuple[Node, web.AppRunner]:
    """A node on a free loopback port; with ``tls`` it serves HTTPS (self-signed) and
    federates with other test nodes (certificate checks off: the interop suite checks them).
    ``host``: another loopback address (``127.0.0.2``...) for nodes that server ACLs and
    consortium member lists, which match hosts and ignore ports, must tell apart."""
    port = free_port()
    server_name = f"{host}:{port}"
    init_node(server_name, directory, enable_registration=True, tls_self_signed=tls)
    loaded = load_config(directory)
    if tls:
        config_changes.setdefault(
            "federation", dataclasses.replace(loaded.federation, verify_tls=False)
        )
    config = dataclasses.replace(
        loaded,
        database=db_url,
        **{
            "rate_limit": RateLimit(per_second=10_000, burst=10_000),
            "login_limits": UNLIMITED_LOGINS,
            "media_download_limit": Rate(10_000, 10_000),
            **config_changes,
        },
    )
    services = await build_services(config, fast_passwords=True)
    # As `kairan serve`: requests still in flight at the end (a client's long-poll) get the
    # node's shutdown grace, not aiohttp's default 60 s.
    runner = web.AppRunner(make_app(services), shutdown_timeout=SHUTDOWN_GRACE_SECONDS)
    await runner.setup()
    await web.TCPSite(runner, host, port, ssl_context=ssl_context(config)).start()
    await services.federation.start()
    await services.pushers.pool.start()
    await start_features(services)
    scheme = "https" if tls else "http"
    return Node(server_name, f"{scheme}://{server_name}", services, directory), runner


async def stop_node(node: Node, runner: web.AppRunner) -> None:
    """The end of a node ``start_node`` started: its HTTP server, then its services."""
    await runner.cleanup()
    await close_services(node.services)


@contextlib.asynccontextmanager
async def running_node(directory: Path, db_url: str, **options: Any) -> AsyncIterator[Node]:
    """``start_node(directory, db_url, **options)`` for the ``async with`` block, stopped at
    its end however it ends."""
    node, runner = await start_node(directory, db_url, **options)
    try:
        yield node
    finally:
        await stop_node(node, runner)


class NodeGroup:
    """Nodes started one after another, for ``running_nodes``."""

    def __init__(self) -> None:
        self.started: list[tuple[Node, web.AppRunner]] = []

    async def start(self, directory: Path, db_url: str, **options: Any) -> Node:
        """``start_node``; the node stops with the group."""
        node, runner = await start_node(directory, db_url, **options)
        self.started.append((node, runner))
        return node

    @property
    def nodes(self) -> list[Node]:
        return [node for node, _ in self.started]


@contextlib.asynccontextmanager
async def running_nodes() -> AsyncIterator[NodeGroup]:
    """A group to start nodes in (``await group.start(...)``); at the block's end every node
    it started stops, in the order they started."""
    group = NodeGroup()
    try:
        yield group
    finally:
        for node, runner in group.started:
            await stop_node(node, runner)


async def two_nodes(
    tmp_path: Path, db_url: str, db_url_b: str, **b_config: Any
) -> AsyncIterator[tuple[Node, Node]]:
    """Nodes A and B over TLS that federate with each other (``b_config``: B's changes)."""
    async with running_nodes() as group:
        a = await group.start(tmp_path / "a", db_url, tls=True)
        b = await group.start(tmp_path / "b", db_url_b, tls=True, **b_config)
        yield a, b


@pytest.fixture
async def pair(tmp_path: Path, db_url: str, db_url_b: str) -> AsyncIterator[tuple[Node, Node]]:
    async for nodes in two_nodes(tmp_path, db_url, db_url_b):
        yield nodes


@pytest.fixture
async def node(tmp_path: Path, db_url: str) -> AsyncIterator[Node]:
    async with running_node(tmp_path / "node", db_url) as started:
        yield started


@pytest.fixture
async def client(node: Node) -> AsyncIterator[Client]:
    async with node.client() as c:
        yield c


@pytest.fixture
async def vclient(node: Node, openapi: ClientServerSpec | None) -> AsyncIterator[ValidatingClient]:
    """A client of ``node`` that checks every response (no 5xx, JSON error bodies) and, in a
    conformance run, validates each against the spec: the test fails on any mismatch."""
    c = ValidatingClient(node.base_url, openapi)
    try:
        yield c
        assert c.mismatches == [], "\n".join(c.mismatches)
    finally:
        await c.close()
