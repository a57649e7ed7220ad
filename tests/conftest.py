"""Shared test configuration: the databases every storage-touching test runs on.

Tests that take the ``db_url`` fixture run once on SQLite and once on PostgreSQL.  The
PostgreSQL server is one setting, ``KAIRAN_TEST_POSTGRES_URL`` (default
``postgresql://postgres@127.0.0.1:5432/test``): its database is where each test session
creates and drops databases of its own.  Where that server is not reachable the PostgreSQL
variant is not generated and the session header says so; with ``KAIRAN_REQUIRE_POSTGRES=1``
(as ``.ci/run`` sets) an unreachable PostgreSQL fails the run.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import socket
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

#: The conformance run (responses validated against the Matrix spec's OpenAPI) and its option;
#: pytester, to test that plugin on small suites of its own.
pytest_plugins = ["tests.homeserver.conformance", "pytester"]

POSTGRES_URL_VAR = "KAIRAN_TEST_POSTGRES_URL"
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
REQUIRE_POSTGRES = os.environ.get("KAIRAN_REQUIRE_POSTGRES") == "1"


def _postgres_url(raw: str) -> URL:
    try:
        url = make_url(raw)
    except ArgumentError:
        raise ValueError(f"{POSTGRES_URL_VAR}={raw!r} is not a database URL") from None
    if url.get_backend_name() != "postgresql" or not url.database:
        raise ValueError(f"{POSTGRES_URL_VAR}={raw!r}: expected postgresql://user@host:port/db")
    return url


try:
    PG_URL = _postgres_url(os.environ.get(POSTGRES_URL_VAR) or DEFAULT_POSTGRES_URL)
    PG_URL_ERROR = None
except ValueError as e:  # reported by pytest_configure, in one line
    PG_URL, PG_URL_ERROR = make_url(DEFAULT_POSTGRES_URL), str(e)
#: Where the server is, for messages (never the password).
PG_WHERE = f"{PG_URL.host or 'localhost'}:{PG_URL.port or 5432}"


def _postgres_reachable() -> bool:
    if PG_URL_ERROR is not None:
        return False
    try:
        with socket.create_connection((PG_URL.host or "localhost", PG_URL.port or 5432), timeout=1):
            return True
    except OSError:
        return False


POSTGRES = _postgres_reachable()


def pytest_report_header(config: pytest.Config) -> str:
    if POSTGRES:
        return f"databases: SQLite and PostgreSQL at {PG_WHERE}"
    return (
        f"databases: SQLite only (PostgreSQL at {PG_WHERE} not reachable; set "
        f"{POSTGRES_URL_VAR} to use another, KAIRAN_REQUIRE_POSTGRES=1 to insist)"
    )


def pytest_configure(config: pytest.Config) -> None:
    if PG_URL_ERROR is not None:
        raise pytest.UsageError(PG_URL_ERROR)


def pytest_sessionstart(session: pytest.Session) -> None:
    if REQUIRE_POSTGRES and not POSTGRES:
        raise pytest.UsageError(
            f"KAIRAN_REQUIRE_POSTGRES=1 but PostgreSQL at {PG_WHERE} is not reachable "
            f"(set {POSTGRES_URL_VAR})"
        )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "db_backend" in metafunc.fixturenames:
        backends = ["sqlite", "postgresql"] if POSTGRES else ["sqlite"]
        metafunc.parametrize("db_backend", backends, scope="session")


def _pg_admin(sql: str) -> None:
    """Run one statement on the admin database (in a thread: a loop may be running here)."""
    import asyncpg

    async def run() -> None:
        dsn = PG_URL.set(drivername="postgresql").render_as_string(hide_password=False)
        conn = await asyncpg.connect(dsn)
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
    url = PG_URL.set(drivername="postgresql+asyncpg", database=name)
    yield url.render_as_string(hide_password=False)
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
