"""The alembic migrations create exactly the schema the code declares."""

from __future__ import annotations

from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config as AlembicConfig
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from homeserver.storage.database import MIGRATIONS, open_database
from homeserver.storage.schema import include_name, metadata


async def test_migrations_match_schema(db_url: str) -> None:
    db = await open_database(db_url)
    try:
        async with db.engine.connect() as conn:
            diff = await conn.run_sync(lambda sync: compare_metadata(_context(sync), metadata))
        assert diff == [], f"schema.py and the migrations differ: {diff}"
    finally:
        await db.close()


async def test_a_database_of_an_earlier_revision_is_brought_up_to_date(db_url: str) -> None:
    """A node made before migration 0002 keeps its push actions (now in the main timeline)
    and gets the new index, rather than failing on the new column."""
    db = await open_database(db_url)
    await db.close()
    engine = create_async_engine(db_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(lambda sync: _alembic(sync, "downgrade", "0001"))
            await conn.execute(
                text(
                    "INSERT INTO event_push_actions"
                    " (user_id, room_id, stream_ordering, highlight, actions)"
                    " VALUES ('@a:x', '!r:x', 5, false, NULL)"
                )
            )
    finally:
        await engine.dispose()
    db = await open_database(db_url)
    try:
        async with db.read() as conn:
            rows = (await conn.execute(text("SELECT thread_id FROM event_push_actions"))).all()
            assert [tuple(r) for r in rows] == [("main",)]
            diff = await conn.run_sync(lambda sync: compare_metadata(_context(sync), metadata))
        assert diff == []
    finally:
        await db.close()


def _alembic(connection: Any, verb: str, revision: str) -> None:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    getattr(command, verb)(cfg, revision)


def _context(connection: Any) -> MigrationContext:
    """A comparison that leaves out the search index's dialect-only structures."""
    return MigrationContext.configure(connection, opts={"include_name": include_name})
