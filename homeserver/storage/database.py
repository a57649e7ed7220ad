"""The database: one async engine for SQLite (aiosqlite) or PostgreSQL (asyncpg).

Start-up runs the alembic migrations to head.  SQLite runs in WAL mode with
``synchronous=FULL`` (a committed transaction survives a crash of the process and of the
machine); its writes are serialised in-process, since SQLite has one writer at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import event, func, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from homeserver.storage import schema
from homeserver.storage.changes import (
    Changes,
    start_pending,
    start_recording,
    stop_pending,
    stop_recording,
)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class StorageError(Exception):
    """The database cannot be used; the message says why in one line."""


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_reset(dbapi_connection: Any, _record: Any, _state: Any) -> None:
    if dbapi_connection.driver_connection.in_transaction:
        dbapi_connection.rollback()


def _upgrade(connection: Connection) -> None:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, "head")


class StreamIds:
    """The node's single stream of positions, allocated in-process.

    ``current`` is the highest position below which every allocated position has been
    committed (or abandoned), so a reader at ``current`` never skips a row that commits
    later.
    """

    def __init__(self, start: int) -> None:
        self._last = start
        self._backfill = 0
        self._in_flight: set[int] = set()
        self._current = start
        self.advanced = asyncio.Event()

    @property
    def current(self) -> int:
        return self._current

    def backfill_position(self) -> int:
        """A position below every other: backfilled history sorts before what sync has seen."""
        self._backfill -= 1
        return self._backfill

    @contextlib.contextmanager
    def allocate(self) -> Any:
        """A new position, in flight until released; released inside a ``Database.write()``
        block, it stays in flight until that transaction has committed or rolled back."""
        self._last += 1
        position = self._last
        self._in_flight.add(position)
        try:
            yield position
        finally:
            held = _held_positions.get()
            if held is not None and held.open:
                held.positions.append(position)
            else:
                self.release([position])

    def release(self, positions: list[int]) -> None:
        for position in positions:
            self._in_flight.discard(position)
        new_current = min(self._in_flight) - 1 if self._in_flight else self._last
        if new_current > self._current:
            self._current = new_current
            self.advanced.set()
            self.advanced = asyncio.Event()


class _Held:
    """Positions released inside one ``Database.write()`` block, before its commit."""

    def __init__(self) -> None:
        self.open = True
        self.positions: list[int] = []


_held_positions: contextvars.ContextVar[_Held | None] = contextvars.ContextVar(
    "kairan_held_stream_positions", default=None
)


class Database:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.is_sqlite = engine.dialect.name == "sqlite"
        self._write_lock = asyncio.Lock()
        self.stream: StreamIds = StreamIds(0)
        #: What changed at which stream position, for /sync (see storage/changes.py).
        self.changes = Changes(0)

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A read-write transaction, committed when the block ends without an exception.

        Stream positions allocated and released inside the block stay in flight until the
        commit (or rollback): released before it, a /sync could answer up to a position
        whose row is not visible yet, and its next sync would skip that row for good."""
        held = _Held()
        token = _held_positions.set(held)
        recording = start_recording(self.changes)
        pending, marks = start_pending()
        committed = False
        try:
            if self.is_sqlite:
                async with self._write_lock, self.engine.begin() as conn:
                    yield conn
            else:
                async with self.engine.begin() as conn:
                    yield conn
            committed = True
        finally:
            stop_pending(pending, marks, committed)
            stop_recording(recording)
            _held_positions.reset(token)
            held.open = False
            self.stream.release(held.positions)

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as conn:
            yield conn

    async def close(self) -> None:
        await self.engine.dispose()

    async def _load_stream_position(self) -> None:
        columns = [
            schema.events.c.stream_ordering,
            schema.receipts.c.stream_id,
            schema.account_data.c.stream_id,
            schema.to_device.c.stream_id,
            schema.device_list_changes.c.stream_id,
            schema.memberships.c.stream_ordering,
            schema.presence.c.stream_id,
        ]
        async with self.read() as conn:
            highest = 0
            for column in columns:
                value = (await conn.execute(select(func.max(column)))).scalar()
                highest = max(highest, int(value or 0))
        self.stream = StreamIds(highest)
        self.changes = Changes(highest)
        async with self.read() as conn:
            lowest = (
                await conn.execute(select(func.min(schema.events.c.stream_ordering)))
            ).scalar()
        self.stream._backfill = min(0, int(lowest or 0))


async def open_database(url: str) -> Database:
    """Connect, run migrations, and return the database; StorageError if it can't be used."""
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # Readers run in parallel in WAL mode: enough connections for concurrent requests.
        # A connection goes back to the pool without a ROLLBACK when it has no transaction
        # open (nearly always: reads open none, writes end theirs), saving the trip to its
        # thread that SQLAlchemy's unconditional reset costs.
        engine = create_async_engine(url, pool_size=20, max_overflow=20, pool_reset_on_return=None)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine.pool, "reset", _sqlite_reset)
    else:
        engine = create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)
    database = Database(engine)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade)
        await database._load_stream_position()
    except (OSError, OperationalError, DBAPIError) as e:
        await engine.dispose()
        reason = str(getattr(e, "orig", None) or e).strip().splitlines()[0]
        raise StorageError(f"cannot use the database {_redact_url(url)}: {reason}") from e
    except SQLAlchemyError as e:
        await engine.dispose()
        raise StorageError(f"database error at {_redact_url(url)}: {e}") from e
    return database


def _redact_url(url: str) -> str:
    """The URL without its password."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        credentials, host = rest.rsplit("@", 1)
        user = credentials.split(":", 1)[0]
        return f"{scheme}://{user}@{host}"
    return url
