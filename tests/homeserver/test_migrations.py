"""The alembic migrations create exactly the schema the code declares."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from homeserver.storage.database import open_database
from homeserver.storage.schema import metadata


async def test_migrations_match_schema(db_url: str) -> None:
    db = await open_database(db_url)
    try:
        async with db.engine.connect() as conn:
            diff = await conn.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), metadata)
            )
        assert diff == [], f"schema.py and the migrations differ: {diff}"
    finally:
        await db.close()
