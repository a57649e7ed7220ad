"""A room's extremities: forward extremities (the events no other event here points to
yet, the ``prev_events`` of the next event sent) and backward extremities (where older
history continues, for backfill)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from homeserver.storage import driver
from homeserver.storage.schema import event_edges, events, forward_extremities


async def get_forward_extremities(conn: AsyncConnection, room_id: str) -> list[str]:
    rows = await conn.execute(
        select(forward_extremities.c.event_id).where(forward_extremities.c.room_id == room_id)
    )
    return [r.event_id for r in rows]


async def set_forward_extremities(
    conn: AsyncConnection, room_id: str, remove: Iterable[str], add: Iterable[str]
) -> None:
    await driver.run(conn, extremity_statements(room_id, remove, add))


def extremity_statements(
    room_id: str, remove: Iterable[str], add: Iterable[str]
) -> list[driver.Statement]:
    return [
        (
            "DELETE FROM forward_extremities WHERE room_id = ? AND event_id = ?",
            [(room_id, e) for e in remove],
        ),
        (
            "INSERT INTO forward_extremities (room_id, event_id) VALUES (?, ?)",
            [(room_id, e) for e in add],
        ),
    ]


async def backward_extremities(conn: AsyncConnection, room_id: str, limit: int = 20) -> list[str]:
    """Prev events of the room's timeline events that are not in the timeline (unknown, or
    known only as outliers): where older history continues."""
    prev = event_edges.alias("prev")
    known = events.alias("known")
    rows = await conn.execute(
        select(prev.c.prev_event_id)
        .join(events, events.c.event_id == prev.c.event_id)
        .outerjoin(known, and_(known.c.event_id == prev.c.prev_event_id, ~known.c.outlier))
        .where(events.c.room_id == room_id, ~events.c.outlier, known.c.event_id.is_(None))
        .order_by(events.c.stream_ordering)
        .limit(limit)
    )
    return list(dict.fromkeys(r.prev_event_id for r in rows))


async def has_timeline_successor(conn: AsyncConnection, event_id: str) -> bool:
    """Whether an event of the timeline (not an outlier) names ``event_id`` among its prev
    events: false for the room's newest events and where newer history is unknown here."""
    row = (
        await conn.execute(
            select(event_edges.c.event_id)
            .join(events, events.c.event_id == event_edges.c.event_id)
            .where(event_edges.c.prev_event_id == event_id, ~events.c.outlier)
            .limit(1)
        )
    ).first()
    return row is not None
