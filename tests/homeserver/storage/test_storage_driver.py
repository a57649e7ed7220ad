"""Statements straight on the driver (homeserver/storage/driver.py): in the SQLAlchemy
connection's transaction (committed and rolled back with it), seen by statement
listeners, and on SQLite in one trip to aiosqlite's thread."""

from __future__ import annotations

from typing import Any

import aiosqlite
import pytest
from sqlalchemy import event

from homeserver.storage import driver
from homeserver.storage.database import open_database

INSERT = "INSERT INTO forward_extremities (room_id, event_id) VALUES (?, ?)"
SELECT = "SELECT event_id FROM forward_extremities WHERE room_id = ? ORDER BY event_id"


async def test_statements_commit_and_roll_back_with_the_transaction(db_url: str) -> None:
    db = await open_database(db_url)
    try:
        async with db.write() as conn:
            await driver.run(
                conn,
                [
                    (INSERT, [("!a", "$1"), ("!a", "$2")]),
                    (INSERT, []),  # no rows: left out
                    ("DELETE FROM forward_extremities WHERE room_id = ? AND event_id = ?",
                     [("!a", "$1")]),
                ],
            )  # fmt: skip
        with pytest.raises(RuntimeError):
            async with db.write() as conn:
                await driver.run(conn, [(INSERT, [("!a", "$3")])])
                assert await driver.fetchall(conn, SELECT, ["!a"]) == [("$2",), ("$3",)]
                raise RuntimeError("roll back")
        async with db.read() as conn:
            assert await driver.fetchall(conn, SELECT, ["!a"]) == [("$2",)]
            placeholders = driver.placeholders(3)
            rows = await driver.fetchall(
                conn,
                f"SELECT event_id FROM forward_extremities WHERE event_id IN ({placeholders})",
                ["$1", "$2", "$3"],
            )
            assert rows == [("$2",)]
    finally:
        await db.close()


async def test_statement_listeners_see_them(db_url: str) -> None:
    db = await open_database(db_url)
    seen: list[str] = []

    def listen(*args: Any) -> None:
        seen.append(args[2])

    event.listen(db.engine.sync_engine, "before_cursor_execute", listen)
    try:
        async with db.write() as conn:
            await driver.run(conn, [(INSERT, [("!b", "$1")]), (INSERT, [("!b", "$2")])])
            await driver.fetchall(conn, SELECT, ["!b"])
        assert len(seen) == 3
        assert all("forward_extremities" in s for s in seen)
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", listen)
        await db.close()


async def test_sqlite_gets_a_group_in_one_trip(tmp_path: Any, monkeypatch: Any) -> None:
    """The fast path is the one in use with the installed aiosqlite (a release without
    ``_execute`` would fall back to a trip per statement: this test would say so)."""
    db = await open_database(f"sqlite+aiosqlite:///{tmp_path / 'k.db'}")
    trips: list[str] = []
    queue = aiosqlite.Connection._execute

    async def counted(self: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
        trips.append(getattr(fn, "__name__", repr(fn)))
        return await queue(self, fn, *args, **kwargs)

    try:
        async with db.read() as conn:
            raw = await conn.get_raw_connection()
            assert driver.one_trip(raw.driver_connection)
        monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
        async with db.write() as conn:
            await driver.run(conn, [(INSERT, [("!c", f"${i}")]) for i in range(6)])
        # One trip for the six statements, one for the commit, none for a reset.
        assert trips == ["_run_all", "commit"], trips
        trips.clear()
        async with db.read() as conn:
            assert len(await driver.fetchall(conn, SELECT, ["!c"])) == 6
        assert trips == ["_execute_fetchall"], trips
    finally:
        await db.close()


async def test_sqlite_connection_left_in_a_transaction_is_rolled_back(tmp_path: Any) -> None:
    """Check-in skips the ROLLBACK only when no transaction is open: a write left open in a
    read block (a bug) is rolled back, not kept holding SQLite's write lock."""
    db = await open_database(f"sqlite+aiosqlite:///{tmp_path / 'k.db'}")
    try:
        async with db.read() as conn:
            await driver.run(conn, [(INSERT, [("!d", "$1")])])
        async with db.read() as conn:
            assert await driver.fetchall(conn, SELECT, ["!d"]) == []
        async with db.write() as conn:  # the write lock is free
            await driver.run(conn, [(INSERT, [("!d", "$2")])])
        async with db.read() as conn:
            assert await driver.fetchall(conn, SELECT, ["!d"]) == [("$2",)]
    finally:
        await db.close()
