"""Reports of events, rooms and users (``/report``), and the admins' list of them."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from homeserver.storage.schema import reports

KINDS = ("event", "room", "user")


@dataclass(frozen=True)
class Report:
    id: int
    kind: str
    reporter: str
    room_id: str | None
    event_id: str | None
    target_user_id: str | None
    reason: str | None
    score: int | None
    received_ts: int


async def add_report(
    conn: AsyncConnection,
    kind: str,
    reporter: str,
    received_ts: int,
    *,
    room_id: str | None = None,
    event_id: str | None = None,
    target_user_id: str | None = None,
    reason: str | None = None,
    score: int | None = None,
) -> int:
    result = await conn.execute(
        insert(reports).values(
            kind=kind, reporter=reporter, room_id=room_id, event_id=event_id,
            target_user_id=target_user_id, reason=reason, score=score, received_ts=received_ts,
        )
    )  # fmt: skip
    key = result.inserted_primary_key
    return int(key[0]) if key is not None else 0


async def list_reports(
    conn: AsyncConnection,
    kind: str,
    *,
    start: int,
    limit: int,
    newest_first: bool = True,
    reporter: str | None = None,
    room_id: str | None = None,
    target_user_id: str | None = None,
) -> tuple[list[Report], int]:
    """A page of the reports of ``kind`` (newest first unless asked otherwise), and how many
    match in all. ``reporter``, ``room_id`` and ``target_user_id`` filter by substring, as
    Synapse's admin API does."""
    where = [reports.c.kind == kind]
    for column, value in (
        (reports.c.reporter, reporter),
        (reports.c.room_id, room_id),
        (reports.c.target_user_id, target_user_id),
    ):
        if value:
            where.append(column.contains(value, autoescape=True))
    total = (await conn.execute(select(func.count()).select_from(reports).where(*where))).scalar()
    order = reports.c.id.desc() if newest_first else reports.c.id.asc()
    rows = await conn.execute(
        select(reports).where(*where).order_by(order).offset(start).limit(limit)
    )
    return [Report(**row._mapping) for row in rows], int(total or 0)


async def get_report(conn: AsyncConnection, kind: str, report_id: int) -> Report | None:
    row = (
        await conn.execute(select(reports).where(reports.c.kind == kind, reports.c.id == report_id))
    ).first()
    return Report(**row._mapping) if row else None


async def delete_report(conn: AsyncConnection, kind: str, report_id: int) -> bool:
    result = await conn.execute(
        delete(reports).where(reports.c.kind == kind, reports.c.id == report_id)
    )
    return bool(result.rowcount)
