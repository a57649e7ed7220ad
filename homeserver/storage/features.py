"""A feature's own tables: its alembic migrations, kept apart from the core's.

Each feature has a migrations folder of its own (``env.py`` calling :func:`run_env`, and
``versions/``) and its own version table ``alembic_version_<feature>``, so features and the
core evolve independently: enabling a feature later creates its tables then; disabling it
leaves them alone.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command, context
from alembic.config import Config as AlembicConfig
from sqlalchemy import MetaData
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from homeserver.storage.database import Database, StorageError


async def upgrade_feature(db: Database, feature: str, script_location: Path) -> None:
    """Bring ``feature``'s tables up to its newest migration (at start-up)."""

    def upgrade(connection: Connection) -> None:
        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(script_location))
        cfg.attributes["connection"] = connection
        cfg.attributes["version_table"] = f"alembic_version_{feature}"
        command.upgrade(cfg, "head")

    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(upgrade)
    except SQLAlchemyError as e:
        raise StorageError(f"migrations of feature {feature!r} failed: {e}") from e


def run_env(metadata: MetaData | None = None) -> None:
    """The body of a feature's ``migrations/env.py``: run its migrations on the
    connection start-up hands over, recording them in the feature's own version table."""
    config = context.config
    connection = config.attributes["connection"]
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=config.attributes["version_table"],
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()
