"""Events: persisting them with their edges, and reading them back for rooms and sync."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from federation.canonical import encode_canonical_json
from homeserver.storage import driver
from homeserver.storage.changes import Changes, mark_on_commit, recording
from homeserver.storage.schema import event_edges, event_relations, events


@dataclass(frozen=True)
class StoredEvent:
    """An event as the node keeps it: its PDU and where it sits in the node's stream."""

    event_id: str
    stream_ordering: int
    room_id: str
    pdu: dict[str, Any]
    state_group: int | None
    rejected_reason: str | None = None
    outlier: bool = False
    soft_failed: bool = False
    redacted_by: str | None = None

    @property
    def type(self) -> str:
        return str(self.pdu["type"])

    @property
    def state_key(self) -> str | None:
        value = self.pdu.get("state_key")
        return value if isinstance(value, str) else None

    @property
    def sender(self) -> str:
        return str(self.pdu["sender"])


_COLUMNS = (
    events.c.event_id,
    events.c.stream_ordering,
    events.c.room_id,
    events.c.json,
    events.c.state_group,
    events.c.rejected_reason,
    events.c.outlier,
    events.c.soft_failed,
    events.c.redacted_by,
)


#: The same columns for statements on the driver (:func:`room_events`).
_SELECT_EVENTS = f"SELECT {', '.join(c.name for c in _COLUMNS)} FROM events"


def _event_of(row: Sequence[Any]) -> StoredEvent:
    """A row of :data:`_COLUMNS` (a SQLAlchemy row or a driver tuple)."""
    return StoredEvent(
        event_id=row[0],
        stream_ordering=row[1],
        room_id=row[2],
        pdu=json.loads(row[3]),
        state_group=row[4],
        rejected_reason=row[5],
        outlier=bool(row[6]),
        soft_failed=bool(row[7]),
        redacted_by=row[8],
    )


async def insert_event(
    conn: AsyncConnection,
    *,
    stream_ordering: int,
    event_id: str,
    room_id: str,
    pdu: dict[str, Any],
    state_group: int | None,
    outlier: bool = False,
    rejected_reason: str | None = None,
    soft_failed: bool = False,
) -> None:
    changes = recording()
    changes.room_events.mark(room_id, stream_ordering)
    if stream_ordering > 0 and not (outlier or rejected_reason or soft_failed):
        _mark_accepted(changes, room_id, str(pdu.get("type")), stream_ordering)
    await conn.execute(
        insert(events).values(
            stream_ordering=stream_ordering,
            event_id=event_id,
            room_id=room_id,
            type=pdu["type"],
            state_key=pdu.get("state_key"),
            sender=pdu["sender"],
            depth=pdu["depth"],
            origin_server_ts=pdu["origin_server_ts"],
            json=encode_canonical_json(pdu).decode("utf-8"),
            state_group=state_group,
            outlier=outlier,
            rejected_reason=rejected_reason,
            soft_failed=soft_failed,
        )
    )
    prev = pdu.get("prev_events") or []
    if prev:
        await conn.execute(
            insert(event_edges), [{"event_id": event_id, "prev_event_id": p} for p in set(prev)]
        )
    relation = relation_of(pdu)
    if relation is not None:
        await conn.execute(
            insert(event_relations).values(
                event_id=event_id, relates_to_id=relation[1], relation_type=relation[0]
            )
        )
        if relation[0] == "m.thread" and not (outlier or rejected_reason or soft_failed):
            await driver.run(conn, [(_THREAD_UPSERT, [(room_id, relation[1], stream_ordering)])])


async def insert_events(conn: AsyncConnection, rows: Sequence[StoredEvent]) -> None:
    """Insert events (any kind: timeline, outlier, rejected, soft-failed) with their edges
    and relations in at most three multi-row statements."""
    await driver.run(conn, event_statements(rows))


def relation_of(pdu: Mapping[str, Any]) -> tuple[str, str] | None:
    """An event's relation (``content.m.relates_to``): (rel_type, related event ID), or None
    (a reply, whose ``m.in_reply_to`` is no relation, included)."""
    content = pdu.get("content")
    relates = content.get("m.relates_to") if isinstance(content, dict) else None
    if (
        isinstance(relates, dict)
        and isinstance(relates.get("event_id"), str)
        and isinstance(relates.get("rel_type"), str)
    ):
        return relates["rel_type"], relates["event_id"]
    return None


#: A thread's latest reply moves on (``threads``; a reply stored late, backfilled, does not
#: move it back).
_THREAD_UPSERT = (
    "INSERT INTO threads (room_id, thread_id, latest_stream_ordering) VALUES (?, ?, ?)"
    " ON CONFLICT (room_id, thread_id) DO UPDATE"
    " SET latest_stream_ordering = excluded.latest_stream_ordering"
    " WHERE excluded.latest_stream_ordering > threads.latest_stream_ordering"
)


def _mark_accepted(changes: Changes, room_id: str, event_type: str, position: int) -> None:
    """An accepted event: its room and (room, type) marked once the write commits."""
    mark_on_commit(changes.accepted_events, room_id, position)
    mark_on_commit(changes.accepted_types, (room_id, event_type), position)


def event_statements(rows: Sequence[StoredEvent]) -> list[driver.Statement]:
    """The statements that insert ``rows`` (inside a ``Database.write()``: the rooms are
    marked changed at the events' positions)."""
    changes = recording()
    for e in rows:
        changes.room_events.mark(e.room_id, e.stream_ordering)
        if e.stream_ordering > 0 and not (e.outlier or e.rejected_reason or e.soft_failed):
            _mark_accepted(changes, e.room_id, e.type, e.stream_ordering)
    # (event, related event, rel_type)
    relations = [(e.event_id, r[1], r[0]) for e in rows if (r := relation_of(e.pdu)) is not None]
    replies = [
        (e.room_id, r[1], e.stream_ordering)
        for e in rows
        if (r := relation_of(e.pdu)) is not None and r[0] == "m.thread"
        if not (e.outlier or e.rejected_reason or e.soft_failed)
    ]
    return [
        (
            "INSERT INTO events (stream_ordering, event_id, room_id, type, state_key, sender,"
            " depth, origin_server_ts, json, state_group, outlier, rejected_reason,"
            " soft_failed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    e.stream_ordering,
                    e.event_id,
                    e.room_id,
                    e.pdu["type"],
                    e.pdu.get("state_key"),
                    e.pdu["sender"],
                    e.pdu["depth"],
                    e.pdu["origin_server_ts"],
                    encode_canonical_json(e.pdu).decode("utf-8"),
                    e.state_group,
                    e.outlier,
                    e.rejected_reason,
                    e.soft_failed,
                )
                for e in rows
            ],
        ),
        (
            "INSERT INTO event_edges (event_id, prev_event_id) VALUES (?, ?)",
            [(e.event_id, p) for e in rows for p in sorted(set(e.pdu.get("prev_events") or []))],
        ),
        (
            "INSERT INTO event_relations (event_id, relates_to_id, relation_type) VALUES (?, ?, ?)",
            relations,
        ),
        (_THREAD_UPSERT, replies),
    ]


async def delete_outliers(conn: AsyncConnection, event_ids: Sequence[str]) -> None:
    """Remove outliers' rows so the events can be stored again as part of the timeline."""
    ids = list(event_ids)
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        await conn.execute(delete(events).where(events.c.event_id.in_(chunk), events.c.outlier))
        await conn.execute(delete(event_edges).where(event_edges.c.event_id.in_(chunk)))
        await conn.execute(delete(event_relations).where(event_relations.c.event_id.in_(chunk)))


async def outlier_flags(conn: AsyncConnection, event_ids: Iterable[str]) -> dict[str, bool]:
    """Which of ``event_ids`` are stored, each with whether it is (still) an outlier."""
    ids = list(set(event_ids))
    found: dict[str, bool] = {}
    for start in range(0, len(ids), 500):
        rows = await conn.execute(
            select(events.c.event_id, events.c.outlier).where(
                events.c.event_id.in_(ids[start : start + 500])
            )
        )
        found.update((r.event_id, bool(r.outlier)) for r in rows)
    return found


async def get_events(conn: AsyncConnection, event_ids: Iterable[str]) -> dict[str, StoredEvent]:
    ids = list(set(event_ids))
    found: dict[str, StoredEvent] = {}
    for start in range(0, len(ids), 500):
        rows = await conn.execute(
            select(*_COLUMNS).where(events.c.event_id.in_(ids[start : start + 500]))
        )
        for row in rows:
            found[row.event_id] = _event_of(row)
    return found


def _types_sql(patterns: Sequence[str]) -> tuple[str, list[str]]:
    """SQL of ``type`` matching one of ``patterns`` (``*`` any characters), and its values."""
    exact = [p for p in patterns if "*" not in p]
    parts = [f"type IN ({driver.placeholders(len(exact))})"] if exact else []
    values = list(exact)
    for pattern in patterns:
        if "*" in pattern:
            escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            parts.append("type LIKE ? ESCAPE '\\'")
            values.append(escaped.replace("*", "%"))
    return ("(" + " OR ".join(parts) + ")" if parts else "1 = 0"), values


async def room_events(
    conn: AsyncConnection,
    room_id: str,
    *,
    after: int | None = None,
    upto: int | None = None,
    before: int | None = None,
    limit: int,
    backwards: bool,
    types: Sequence[str] | None = None,
    not_types: Sequence[str] | None = None,
    senders: Sequence[str] | None = None,
    not_senders: Sequence[str] | None = None,
) -> list[StoredEvent]:
    """Accepted, non-outlier events of a room in stream order within (after, upto] or < before.

    On the driver (one trip): /sync reads this for every room it shows."""
    where = ["room_id = ?", "NOT outlier", "rejected_reason IS NULL", "NOT soft_failed"]
    values: list[Any] = [room_id]
    for condition, value in (
        ("stream_ordering > ?", after),
        ("stream_ordering <= ?", upto),
        ("stream_ordering < ?", before),
    ):
        if value is not None:
            where.append(condition)
            values.append(value)
    if types is not None:  # [] includes nothing, as the spec reads
        sql, more = _types_sql(types)
        where.append(sql)
        values += more
    if not_types:
        sql, more = _types_sql(not_types)
        where.append(f"NOT {sql}")
        values += more
    if senders:
        where.append(f"sender IN ({driver.placeholders(len(senders))})")
        values += list(senders)
    if not_senders:
        where.append(f"sender NOT IN ({driver.placeholders(len(not_senders))})")
        values += list(not_senders)
    order = "DESC" if backwards else "ASC"
    rows = await driver.fetchall(
        conn,
        f"{_SELECT_EVENTS} WHERE {' AND '.join(where)} ORDER BY stream_ordering {order} LIMIT ?",
        [*values, limit],
    )
    return [_event_of(r) for r in rows]


async def room_min_depth(conn: AsyncConnection, room_id: str) -> int:
    """The smallest depth of the room's timeline events here (0 for none): where this
    server's history of the room begins (``min_depth`` of /get_missing_events)."""
    value = (
        await conn.execute(
            select(func.min(events.c.depth)).where(events.c.room_id == room_id, ~events.c.outlier)
        )
    ).scalar()
    return int(value or 0)


async def mark_redacted(
    conn: AsyncConnection, event_id: str, redaction_id: str, pruned: dict[str, Any]
) -> None:
    await conn.execute(
        update(events)
        .where(and_(events.c.event_id == event_id, events.c.redacted_by.is_(None)))
        .values(redacted_by=redaction_id, json=encode_canonical_json(pruned).decode("utf-8"))
    )
    await _thread_after_redaction(conn, event_id)


async def _thread_after_redaction(conn: AsyncConnection, event_id: str) -> None:
    """A redacted reply leaves its thread: the thread's latest reply is the one before it,
    or the room has the thread no more."""
    found = await driver.fetchall(
        conn,
        "SELECT e.room_id, r.relates_to_id FROM event_relations r"
        " JOIN events e ON e.event_id = r.event_id"
        " WHERE r.event_id = ? AND r.relation_type = 'm.thread'",
        [event_id],
    )
    if not found:
        return
    room_id, root = found[0]
    latest = await driver.fetchall(
        conn,
        "SELECT MAX(e.stream_ordering) FROM event_relations r"
        " JOIN events e ON e.event_id = r.event_id"
        " WHERE r.relates_to_id = ? AND r.relation_type = 'm.thread' AND e.room_id = ?"
        " AND NOT e.outlier AND e.rejected_reason IS NULL AND NOT e.soft_failed"
        " AND e.redacted_by IS NULL",
        [root, room_id],
    )
    where = " WHERE room_id = ? AND thread_id = ?"
    if latest and latest[0][0] is not None:
        sql = "UPDATE threads SET latest_stream_ordering = ?" + where
        await driver.run(conn, [(sql, [(latest[0][0], room_id, root)])])
    else:
        await driver.run(conn, [("DELETE FROM threads" + where, [(room_id, root)])])


async def rejected_among(conn: AsyncConnection, event_ids: Sequence[str]) -> set[str]:
    """Those of ``event_ids`` that were rejected."""
    found: set[str] = set()
    ids = list(event_ids)
    for start in range(0, len(ids), 500):
        rows = await conn.execute(
            select(events.c.event_id).where(
                events.c.event_id.in_(ids[start : start + 500]),
                events.c.rejected_reason.is_not(None),
            )
        )
        found.update(r.event_id for r in rows)
    return found


async def near_timestamp(
    conn: AsyncConnection, room_id: str, ts: int, forward: bool, limit: int
) -> list[StoredEvent]:
    """The room's events (no outliers, rejected or soft-failed ones) from ``ts`` on
    (``forward``) or up to it, nearest first (``timestamp_to_event``)."""
    order = (
        (events.c.origin_server_ts.asc(), events.c.stream_ordering.asc())
        if forward
        else (events.c.origin_server_ts.desc(), events.c.stream_ordering.desc())
    )
    near = events.c.origin_server_ts >= ts if forward else events.c.origin_server_ts <= ts
    rows = await conn.execute(
        select(*_COLUMNS)
        .where(
            events.c.room_id == room_id,
            near,
            events.c.outlier.is_(False),
            events.c.rejected_reason.is_(None),
            events.c.soft_failed.is_(False),
        )
        .order_by(*order)
        .limit(limit)
    )
    return [_event_of(row) for row in rows]


async def recent_events_of_rooms(
    conn: AsyncConnection, rooms: Sequence[tuple[str, int | None, int]], limit: int
) -> dict[str, list[StoredEvent]]:
    """For each (room ID, after, upto): the room's latest ``limit`` accepted, non-outlier
    events in (after, upto], newest first, as :func:`room_events` reads them, in one
    statement for up to 100 rooms (one ``LIMIT`` subquery each, so each uses the index)."""
    found: dict[str, list[StoredEvent]] = {}
    for start in range(0, len(rooms), 100):
        parts: list[str] = []
        values: list[Any] = []
        for room_id, after, upto in rooms[start : start + 100]:
            where = "room_id = ? AND NOT outlier AND rejected_reason IS NULL AND NOT soft_failed"
            where += " AND stream_ordering <= ?"
            values += [room_id, upto]
            if after is not None:
                where += " AND stream_ordering > ?"
                values.append(after)
            parts.append(
                f"SELECT * FROM ({_SELECT_EVENTS} WHERE {where}"
                " ORDER BY stream_ordering DESC LIMIT ?) AS r"
            )
            values.append(limit)
        rows = await driver.fetchall(conn, " UNION ALL ".join(parts), values)
        for row in rows:
            found.setdefault(row[2], []).append(_event_of(row))
    for events_of_room in found.values():
        events_of_room.sort(key=lambda e: e.stream_ordering, reverse=True)
    return found
