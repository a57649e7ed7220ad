"""Alembic environment: migrations run on the connection that start-up passes in."""

from __future__ import annotations

from alembic import context

from homeserver.storage.schema import include_name, metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only for 'alembic revision --autogenerate'
    from sqlalchemy import create_engine

    url = context.config.get_main_option("sqlalchemy.url") or "sqlite:///:memory:"
    connection = create_engine(url).connect()

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=True,
    include_name=include_name,
)
with context.begin_transaction():
    context.run_migrations()
