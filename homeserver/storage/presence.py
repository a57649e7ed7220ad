"""Presence: the latest state of each user, one row each, at the stream position of the
last change clients were told about (/sync's ``presence`` section reads by position)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from homeserver.storage.changes import recording
from homeserver.storage.schema import presence

#: Users asked for in one query (bound parameters stay far below the databases' limits).
_CHUNK = 500


@dataclass(frozen=True)
class PresenceRow:
    user_id: str
    state: str
    status_msg: str | None
    last_active_ts: int
    currently_active: bool
    stream_id: int


async def set_presence(conn: AsyncConnection, row: PresenceRow) -> None:
    recording().presence.mark(row.user_id, row.stream_id)
    await conn.execute(delete(presence).where(presence.c.user_id == row.user_id))
    await conn.execute(
        insert(presence).values(
            user_id=row.user_id,
            state=row.state,
            status_msg=row.status_msg,
            last_active_ts=row.last_active_ts,
            currently_active=row.currently_active,
            stream_id=row.stream_id,
        )
    )


async def presence_of(conn: AsyncConnection, user_ids: Iterable[str]) -> list[PresenceRow]:
    """The stored presence of these users (those with none are left out)."""
    wanted = sorted(set(user_ids))
    found: list[PresenceRow] = []
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        rows = await conn.execute(select(presence).where(presence.c.user_id.in_(chunk)))
        found.extend(PresenceRow(**r._mapping) for r in rows)
    return found


async def presence_changed(conn: AsyncConnection, since: int, upto: int) -> list[PresenceRow]:
    """Every presence row changed in (since, upto], oldest first."""
    rows = await conn.execute(
        select(presence)
        .where(presence.c.stream_id > since, presence.c.stream_id <= upto)
        .order_by(presence.c.stream_id)
    )
    return [PresenceRow(**r._mapping) for r in rows]
