"""The sample feature's own table (created by its migration ``0001``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column, MetaData, String, Table, Text, select

metadata = MetaData()

notes = Table(
    "sample_notes",
    metadata,
    Column("user_id", String(255), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("value", Text, nullable=False),
)


async def put_note(conn: Any, user_id: str, key: str, value: str) -> None:
    await conn.execute(notes.delete().where(notes.c.user_id == user_id, notes.c.key == key))
    await conn.execute(notes.insert().values(user_id=user_id, key=key, value=value))


async def get_note(conn: Any, user_id: str, key: str) -> str | None:
    row = (
        await conn.execute(
            select(notes.c.value).where(notes.c.user_id == user_id, notes.c.key == key)
        )
    ).first()
    return None if row is None else str(row[0])


async def count_notes(conn: Any) -> int:
    return len((await conn.execute(select(notes.c.key))).all())
