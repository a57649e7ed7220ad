"""Simplified Sliding Sync (MSC4186): connection positions, and the per-room reads a room
list needs for all of a user's rooms at once (the latest event, the latest bump event)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from sqlalchemy import (
    ColumnElement,
    case,
    delete,
    select,
    union_all,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from homeserver.storage import driver
from homeserver.storage.schema import memberships, sliding_sync_positions

_BATCH = 500


@dataclass(frozen=True)
class Connection:
    """Who a connection belongs to: (user, device, conn_id)."""

    user_id: str
    device_id: str
    conn_id: str

    def where(self) -> list[ColumnElement[bool]]:
        t = sliding_sync_positions.c
        return [
            t.user_id == self.user_id,
            t.device_id == self.device_id,
            t.conn_id == self.conn_id,
        ]


@dataclass(frozen=True)
class StoredPosition:
    position: int
    state: str
    last_used_ts: int


async def get_position(
    conn: AsyncConnection, connection: Connection, position: int
) -> StoredPosition | None:
    t = sliding_sync_positions.c
    row = (
        await conn.execute(
            select(t.position, t.state, t.last_used_ts).where(
                *connection.where(), t.position == position
            )
        )
    ).first()
    return StoredPosition(row.position, row.state, row.last_used_ts) if row else None


async def add_position(
    conn: AsyncConnection, connection: Connection, position: int, state: str, now_ms: int
) -> None:
    await replace_positions(conn, connection, None, position, state, now_ms, delete_old=False)


async def replace_positions(
    conn: AsyncConnection,
    connection: Connection,
    keep: int | None,
    position: int,
    state: str,
    now_ms: int,
    *,
    delete_old: bool = True,
) -> None:
    """In one trip to the database: forget the connection's positions but ``keep`` (None:
    all; nothing with ``delete_old`` false), then add ``position`` with ``state``."""
    who = (connection.user_id, connection.device_id, connection.conn_id)
    statements: list[driver.Statement] = []
    if delete_old:
        statements.append(_delete_statement(connection, keep))
    statements.append(
        (
            "INSERT INTO sliding_sync_positions"
            " (user_id, device_id, conn_id, position, state, last_used_ts)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [(*who, position, state, now_ms)],
        )
    )
    await driver.run(conn, statements)


def _delete_statement(connection: Connection, keep: int | None) -> driver.Statement:
    sql = "DELETE FROM sliding_sync_positions WHERE user_id = ? AND device_id = ? AND conn_id = ?"
    params: list[object] = [connection.user_id, connection.device_id, connection.conn_id]
    if keep is not None:
        sql += " AND position != ?"
        params.append(keep)
    return sql, [params]


async def touch_position(
    conn: AsyncConnection, connection: Connection, position: int, now_ms: int
) -> None:
    t = sliding_sync_positions.c
    await conn.execute(
        update(sliding_sync_positions)
        .where(*connection.where(), t.position == position)
        .values(last_used_ts=now_ms)
    )


async def delete_positions(
    conn: AsyncConnection, connection: Connection, keep: int | None = None
) -> None:
    """Forget the connection's positions but ``keep`` (None: all of them)."""
    await driver.run(conn, [_delete_statement(connection, keep)])


async def delete_unused(conn: AsyncConnection, before_ts: int) -> None:
    """Forget the positions not used since ``before_ts``."""
    t = sliding_sync_positions.c
    await conn.execute(delete(sliding_sync_positions).where(t.last_used_ts < before_ts))


async def latest_positions(
    conn: AsyncConnection, room_ids: Collection[str], upto: int, bump_types: Sequence[str]
) -> dict[str, tuple[int, int | None]]:
    """Each room's latest accepted event at or before ``upto``, and its latest of the
    ``bump_types`` (None: none), as stream positions; rooms without events are left out."""
    ids = list(room_ids)
    types = list(bump_types)
    found: dict[str, tuple[int, int | None]] = {}
    for start in range(0, len(ids), _BATCH):
        chunk = ids[start : start + _BATCH]
        sql = (
            "SELECT room_id, max(stream_ordering),"
            f" max(CASE WHEN type IN ({driver.placeholders(len(types))})"
            " THEN stream_ordering END) FROM events"
            f" WHERE room_id IN ({driver.placeholders(len(chunk))}) AND stream_ordering <= ?"
            " AND NOT outlier AND rejected_reason IS NULL AND NOT soft_failed"
            " GROUP BY room_id"
        )
        rows = await driver.fetchall(conn, sql, [*types, *chunk, upto])
        for room_id, latest, latest_bump in rows:
            found[room_id] = (int(latest), None if latest_bump is None else int(latest_bump))
    return found


async def hero_candidates(
    conn: AsyncConnection, room_ids: Sequence[str], limit: int = 6
) -> dict[str, list[tuple[str, str]]]:
    """Each room's first ``limit`` members as Synapse's room summary orders them: joined,
    invited, left, then the others (bans, knocks), each by when they got there; as
    (user ID, membership)."""
    m = memberships.c
    rank = case(
        (m.membership == "join", 1), (m.membership == "invite", 2), (m.membership == "leave", 3),
        else_=4,
    )  # fmt: skip
    found: dict[str, list[tuple[str, str]]] = {}
    ids = list(room_ids)
    for start in range(0, len(ids), 100):
        parts = [
            select(m.room_id, m.user_id, m.membership, rank.label("rank"), m.stream_ordering)
            .where(m.room_id == room_id)
            .order_by(rank, m.stream_ordering)
            .limit(limit)
            .subquery()
            for room_id in ids[start : start + 100]
        ]
        rows = (await conn.execute(union_all(*(select(part) for part in parts)))).all()
        for room_id, user_id, membership, _, _ in sorted(rows, key=lambda r: (r[0], r[3], r[4])):
            found.setdefault(room_id, []).append((user_id, membership))
    return found
