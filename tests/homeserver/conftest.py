"""Fixtures for the node's tests: a real node on loopback HTTP with a real database."""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from homeserver.app import build_services, close_services, make_app
from homeserver.config import RateLimit, load_config
from homeserver.services import Services
from homeserver.setup import init_node
from homeserver.storage.database import open_database
from homeserver.storage.schema import metadata
from tests.homeserver.client import Client


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def db_url(db_backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if db_backend == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'kairan.db'}"
    url: str = request.getfixturevalue("pg_database")
    # A clean database for every test: migrate once, then empty every table.
    db = await open_database(url)
    try:
        async with db.engine.begin() as conn:
            from sqlalchemy import text

            names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
            await conn.execute(text(f"TRUNCATE {names}"))
    finally:
        await db.close()
    return url


@dataclasses.dataclass
class Node:
    server_name: str
    base_url: str
    services: Services
    directory: Path

    def client(self) -> Client:
        return Client(self.base_url)


async def start_node(
    directory: Path, db_url: str, **config_changes: Any
) -> tuple[Node, web.AppRunner]:
    port = free_port()
    server_name = f"127.0.0.1:{port}"
    init_node(server_name, directory, enable_registration=True)
    config = dataclasses.replace(
        load_config(directory),
        database=db_url,
        rate_limit=RateLimit(per_second=10_000, burst=10_000),
        **config_changes,
    )
    services = await build_services(config, fast_passwords=True)
    runner = web.AppRunner(make_app(services))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return Node(server_name, f"http://{server_name}", services, directory), runner


@pytest.fixture
async def node(tmp_path: Path, db_url: str) -> AsyncIterator[Node]:
    started, runner = await start_node(tmp_path / "node", db_url)
    try:
        yield started
    finally:
        await runner.cleanup()
        await close_services(started.services)


@pytest.fixture
async def client(node: Node) -> AsyncIterator[Client]:
    async with node.client() as c:
        yield c
