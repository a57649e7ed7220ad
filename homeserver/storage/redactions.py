"""Redactions waiting for their target: a redaction that arrives before the event it
redacts is kept here and applied when the event is stored."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from homeserver.storage.schema import pending_redactions


@dataclass(frozen=True)
class PendingRedaction:
    target_id: str
    redaction_id: str
    room_id: str
    sender: str
    redacts_any: bool


async def add_pending_redaction(conn: AsyncConnection, pending: PendingRedaction) -> None:
    await conn.execute(
        delete(pending_redactions).where(
            pending_redactions.c.target_id == pending.target_id,
            pending_redactions.c.redaction_id == pending.redaction_id,
        )
    )
    await conn.execute(insert(pending_redactions).values(**pending.__dict__))


async def take_pending_redactions(
    conn: AsyncConnection, target_ids: Sequence[str]
) -> list[PendingRedaction]:
    """The waiting redactions of these events, removed from the waiting list."""
    ids = list(target_ids)
    if not ids:
        return []
    where = pending_redactions.c.target_id.in_(ids)
    rows = (await conn.execute(select(pending_redactions).where(where))).all()
    if rows:
        await conn.execute(delete(pending_redactions).where(where))
    return [PendingRedaction(**r._mapping) for r in rows]
