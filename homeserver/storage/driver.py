"""The hottest statements, run straight on the database driver.

SQLAlchemy's adapter for aiosqlite makes three or four trips to the connection's thread
per statement (cursor, execute, fetch, close), each a hand-over between threads that
waits its turn on a busy event loop, and adds its own Python: about 0.35 ms per statement
on an idle loop against 0.05 ms for the SQLite work itself, and a millisecond or more per
trip under load.  The group commit of messages runs half a dozen statements per group, so
that overhead was most of a group's cost.  Here :func:`run` sends any number of
statements (each with many rows) to the aiosqlite connection under the SQLAlchemy
connection in **one** trip, in the same transaction; :func:`fetchall` is one trip too.

That one trip uses aiosqlite's ``_execute`` (how its own methods queue work for its
thread; it has no public way to run a function there).  If a later aiosqlite lacks it,
each statement becomes one trip (``executemany``), slower but the same; the test suite
checks that the one-trip path is the one in use.  On PostgreSQL the statements go through
``exec_driver_sql`` (asyncpg's executemany; no thread to hop to).

Statements are written with ``?`` placeholders (rewritten to ``$1``... for asyncpg) and
are fired through the engine's ``before_cursor_execute`` event like any other, so that
whoever counts statements (tests, instrumentation) still sees them.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

_MARK = re.compile(r"\?")

#: One statement and the rows of parameters to run it with.
Statement = tuple[str, Sequence[Sequence[Any]]]


def _numbered(sql: str) -> str:
    counter = iter(range(1, 1_000_000))
    return _MARK.sub(lambda _: f"${next(counter)}", sql)


def _announce(conn: AsyncConnection, sql: str, params: Any, many: bool) -> None:
    sync = conn.sync_connection
    if sync is not None and sync.dispatch.before_cursor_execute:
        sync.dispatch.before_cursor_execute(sync, None, sql, params, None, many)


async def _sqlite(conn: AsyncConnection) -> Any:
    raw = await conn.get_raw_connection()
    return raw.driver_connection


def _run_all(db: sqlite3.Connection, statements: Sequence[Statement]) -> None:
    for sql, rows in statements:
        db.executemany(sql, rows)


def one_trip(aio: Any) -> bool:
    """Whether :func:`run` reaches SQLite in one trip on this aiosqlite connection."""
    return callable(getattr(aio, "_execute", None)) and hasattr(aio, "_conn")


async def run(conn: AsyncConnection, statements: Sequence[Statement]) -> None:
    """Run each statement once per row of its parameters, in order, in ``conn``'s
    transaction (statements without rows are left out)."""
    todo = [(sql, rows) for sql, rows in statements if rows]
    if not todo:
        return
    if conn.dialect.name != "sqlite":
        for sql, rows in todo:
            await conn.exec_driver_sql(_numbered(sql), [tuple(r) for r in rows])
        return
    for sql, rows in todo:
        _announce(conn, sql, rows, True)
    aio = await _sqlite(conn)
    if one_trip(aio):
        await aio._execute(_run_all, aio._conn, todo)
    else:
        for sql, rows in todo:
            await aio.executemany(sql, rows)


async def fetchall(conn: AsyncConnection, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    """The rows ``sql`` selects, in ``conn``'s transaction."""
    if conn.dialect.name == "sqlite":
        _announce(conn, sql, params, False)
        return list(await (await _sqlite(conn)).execute_fetchall(sql, tuple(params)))
    result = await conn.exec_driver_sql(_numbered(sql), tuple(params))
    return [tuple(row) for row in result.all()]


def placeholders(count: int) -> str:
    """``?, ?, ?`` for an ``IN (...)`` of ``count`` values."""
    return ", ".join("?" * count)
