"""The partners feature's own table (created by its migration ``0001``): one row per
partner account, with the last day it works."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, Column, MetaData, String, Table, select

metadata = MetaData()

partners = Table(
    "partner_accounts",
    metadata,
    Column("user_id", String(255), primary_key=True),
    #: The last day the account works, YYYY-MM-DD (in the node's time zone).
    Column("expires", String(10), nullable=False),
    Column("added_ts", BigInteger, nullable=False),
    #: Who made it a partner or last changed its date (an admin's user ID, or "cli").
    Column("changed_by", String(255), nullable=False),
)


@dataclass(frozen=True)
class PartnerRow:
    user_id: str
    expires: str
    added_ts: int
    changed_by: str


async def put(conn: Any, user_id: str, expires: str, now_ms: int, by: str) -> None:
    """Make ``user_id`` a partner until ``expires``, or move its date."""
    found = await get(conn, user_id)
    if found is None:
        await conn.execute(
            partners.insert().values(
                user_id=user_id, expires=expires, added_ts=now_ms, changed_by=by
            )
        )
    else:
        await conn.execute(
            partners.update()
            .where(partners.c.user_id == user_id)
            .values(expires=expires, changed_by=by)
        )


async def get(conn: Any, user_id: str) -> PartnerRow | None:
    row = (await conn.execute(select(partners).where(partners.c.user_id == user_id))).first()
    return None if row is None else PartnerRow(*row)


async def delete(conn: Any, user_id: str) -> bool:
    result = await conn.execute(partners.delete().where(partners.c.user_id == user_id))
    return bool(result.rowcount)


async def all_partners(conn: Any) -> list[PartnerRow]:
    rows = (await conn.execute(select(partners).order_by(partners.c.user_id))).all()
    return [PartnerRow(*row) for row in rows]
