"""Shared test configuration: the databases every storage-touching test runs on.

Tests that take the ``db_url`` fixture run once on SQLite and once on PostgreSQL (the
local server at 127.0.0.1:5432, database ``test``).  Where PostgreSQL is not reachable the
PostgreSQL variant is not generated and the session header says so; with
``KAIRAN_REQUIRE_POSTGRES=1`` (as ``.ci/run`` sets) an unreachable PostgreSQL fails the run.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import socket
from collections.abc import Iterator

import pytest

PG_HOST = os.environ.get("KAIRAN_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("KAIRAN_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("KAIRAN_TEST_PG_USER", "postgres")
PG_ADMIN_DB = os.environ.get("KAIRAN_TEST_PG_DB", "test")
REQUIRE_POSTGRES = os.environ.get("KAIRAN_REQUIRE_POSTGRES") == "1"


def _postgres_reachable() -> bool:
    try:
        with socket.create_connection((PG_HOST, PG_PORT), timeout=1):
            return True
    except OSError:
        return False


POSTGRES = _postgres_reachable()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--matrix-spec",
        default=None,
        help="matrix-spec checkout for the Client-Server conformance tests "
        "(default: $KAIRAN_MATRIX_SPEC, else ../shared/matrix-spec)",
    )


def pytest_report_header(config: pytest.Config) -> str:
    if POSTGRES:
        return f"databases: SQLite and PostgreSQL at {PG_HOST}:{PG_PORT}"
    return (
        "databases: SQLite only (PostgreSQL not reachable; set KAIRAN_REQUIRE_POSTGRES=1 to insist)"
    )


def pytest_sessionstart(session: pytest.Session) -> None:
    if REQUIRE_POSTGRES and not POSTGRES:
        raise pytest.UsageError(
            f"KAIRAN_REQUIRE_POSTGRES=1 but PostgreSQL at {PG_HOST}:{PG_PORT} is not reachable"
        )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "db_backend" in metafunc.fixturenames:
        backends = ["sqlite", "postgresql"] if POSTGRES else ["sqlite"]
        metafunc.parametrize("db_backend", backends, scope="session")


def _pg_admin(sql: str) -> None:
    """Run one statement on the admin database (in a thread: a loop may be running here)."""
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database=PG_ADMIN_DB)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run()).result()


def _session_database(suffix: str) -> Iterator[str]:
    name = f"kairan_test_{os.getpid()}{suffix}"
    _pg_admin(f'DROP DATABASE IF EXISTS "{name}"')
    _pg_admin(f'CREATE DATABASE "{name}"')
    yield f"postgresql+asyncpg://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"
    _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A PostgreSQL database of this test session's own, dropped at the end."""
    yield from _session_database("")


@pytest.fixture(scope="session")
def pg_database_b() -> Iterator[str]:
    """A second one, for a second node in federation tests."""
    yield from _session_database("_b")


@pytest.fixture(scope="session")
def pg_database_c() -> Iterator[str]:
    """A third one, for three-node federation tests."""
    yield from _session_database("_c")
