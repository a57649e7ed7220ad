"""Receipts, account data and filters."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from homeserver.storage import driver
from homeserver.storage.changes import recording
from homeserver.storage.schema import account_data, filters, receipts


@dataclass(frozen=True)
class Receipt:
    room_id: str
    receipt_type: str
    user_id: str
    thread_id: str
    event_id: str
    ts: int
    stream_id: int


#: The columns of ``receipts`` in the order of :class:`Receipt`'s fields (raw statements).
RECEIPT_COLUMNS = "room_id, receipt_type, user_id, thread_id, event_id, ts, stream_id"


async def upsert_receipt(
    conn: AsyncConnection,
    room_id: str,
    receipt_type: str,
    user_id: str,
    thread_id: str,
    event_id: str,
    ts: int,
    stream_id: int,
) -> None:
    changes = recording()
    changes.receipts.mark(room_id, stream_id)
    changes.user_receipts.mark((room_id, user_id), stream_id)
    await conn.execute(
        delete(receipts).where(
            receipts.c.room_id == room_id,
            receipts.c.receipt_type == receipt_type,
            receipts.c.user_id == user_id,
            receipts.c.thread_id == thread_id,
        )
    )
    await conn.execute(
        insert(receipts).values(
            room_id=room_id,
            receipt_type=receipt_type,
            user_id=user_id,
            thread_id=thread_id,
            event_id=event_id,
            ts=ts,
            stream_id=stream_id,
        )
    )


async def receipts_for_rooms(
    conn: AsyncConnection, room_ids: Sequence[str], after: int | None, upto: int | None
) -> list[Receipt]:
    """The receipts of those rooms written in (after, upto] (None: unbounded)."""
    found: list[Receipt] = []
    ids = list(room_ids)
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        sql = f"SELECT {RECEIPT_COLUMNS} FROM receipts WHERE room_id IN ({driver.placeholders(len(chunk))})"
        params: list[Any] = [*chunk]
        if upto is not None:
            sql += " AND stream_id <= ?"
            params.append(upto)
        if after is not None:
            sql += " AND stream_id > ?"
            params.append(after)
        found += [Receipt(*row) for row in await driver.fetchall(conn, sql, params)]
    return found


async def receipts_of_user(
    conn: AsyncConnection,
    user_id: str,
    room_ids: Sequence[str] | None,
    receipt_types: Sequence[str],
) -> dict[str, list[Receipt]]:
    """The user's receipts of those types in each of those rooms (None: in every room;
    rooms without any are left out)."""
    found: dict[str, list[Receipt]] = {}
    types = list(receipt_types)
    if room_ids is None:
        sql = (
            f"SELECT {RECEIPT_COLUMNS} FROM receipts WHERE user_id = ?"
            f" AND receipt_type IN ({driver.placeholders(len(types))})"
        )
        for row in await driver.fetchall(conn, sql, [user_id, *types]):
            receipt = Receipt(*row)
            found.setdefault(receipt.room_id, []).append(receipt)
        return found
    ids = list(room_ids)
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        sql = (
            f"SELECT {RECEIPT_COLUMNS} FROM receipts WHERE user_id = ?"
            f" AND room_id IN ({driver.placeholders(len(chunk))})"
            f" AND receipt_type IN ({driver.placeholders(len(types))})"
        )
        for row in await driver.fetchall(conn, sql, [user_id, *chunk, *types]):
            receipt = Receipt(*row)
            found.setdefault(receipt.room_id, []).append(receipt)
    return found


# ------------------------------------------------------------------ account data


async def put_account_data(
    conn: AsyncConnection,
    user_id: str,
    room_id: str,
    data_type: str,
    content: dict[str, Any],
    stream_id: int,
) -> None:
    recording().account_data.mark(user_id, stream_id)
    await conn.execute(
        delete(account_data).where(
            account_data.c.user_id == user_id,
            account_data.c.room_id == room_id,
            account_data.c.type == data_type,
        )
    )
    await conn.execute(
        insert(account_data).values(
            user_id=user_id,
            room_id=room_id,
            type=data_type,
            content=json.dumps(content, ensure_ascii=False),
            stream_id=stream_id,
        )
    )


async def get_account_data(
    conn: AsyncConnection, user_id: str, room_id: str, data_type: str
) -> dict[str, Any] | None:
    row = (
        await conn.execute(
            select(account_data.c.content).where(
                account_data.c.user_id == user_id,
                account_data.c.room_id == room_id,
                account_data.c.type == data_type,
            )
        )
    ).first()
    return json.loads(row.content) if row else None


async def global_account_data_of(
    conn: AsyncConnection, users: list[str], data_type: str
) -> dict[str, dict[str, Any]]:
    """Each user's global account data of one type (users without it are left out)."""
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(users), 500):
        rows = await conn.execute(
            select(account_data.c.user_id, account_data.c.content).where(
                account_data.c.user_id.in_(users[start : start + 500]),
                account_data.c.room_id == "",
                account_data.c.type == data_type,
            )
        )
        found.update((r.user_id, json.loads(r.content)) for r in rows)
    return found


async def account_data_since(
    conn: AsyncConnection, user_id: str, after: int | None, upto: int
) -> list[tuple[str, str, dict[str, Any]]]:
    """(room ID or "", type, content) changed in (after, upto]."""
    query = select(account_data.c.room_id, account_data.c.type, account_data.c.content).where(
        account_data.c.user_id == user_id, account_data.c.stream_id <= upto
    )
    if after is not None:
        query = query.where(account_data.c.stream_id > after)
    return [(r.room_id, r.type, json.loads(r.content)) for r in await conn.execute(query)]


# ------------------------------------------------------------------ filters


async def insert_filter(conn: AsyncConnection, user_id: str, body: dict[str, Any]) -> int:
    highest = (
        await conn.execute(
            select(func.max(filters.c.filter_id)).where(filters.c.user_id == user_id)
        )
    ).scalar()
    filter_id = int(highest or 0) + 1
    await conn.execute(
        insert(filters).values(user_id=user_id, filter_id=filter_id, json=json.dumps(body))
    )
    return filter_id


async def get_filter(conn: AsyncConnection, user_id: str, filter_id: int) -> dict[str, Any] | None:
    row = (
        await conn.execute(
            select(filters.c.json).where(
                filters.c.user_id == user_id, filters.c.filter_id == filter_id
            )
        )
    ).first()
    return json.loads(row.json) if row else None
