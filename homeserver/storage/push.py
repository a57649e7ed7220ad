"""Push rules, push actions (what notifies whom) and pushers."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, Table, and_, delete, func, insert, literal, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from homeserver.storage import driver
from homeserver.storage.schema import (
    event_push_actions,
    events,
    memberships,
    push_rules,
    pushers,
    read_push_actions,
    receipts,
)

# ------------------------------------------------------------------ push rules


async def get_push_rules(conn: AsyncConnection, user_id: str) -> dict[str, Any] | None:
    row = (
        await conn.execute(select(push_rules.c.json).where(push_rules.c.user_id == user_id))
    ).first()
    return json.loads(row.json) if row else None


async def set_push_rules(conn: AsyncConnection, user_id: str, data: dict[str, Any]) -> None:
    await conn.execute(delete(push_rules).where(push_rules.c.user_id == user_id))
    rules = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    await conn.execute(insert(push_rules).values(user_id=user_id, json=rules))


async def push_rules_of(conn: AsyncConnection, user_ids: Sequence[str]) -> dict[str, str]:
    """The stored rule JSON of those users who ever changed their rules."""
    found: dict[str, str] = {}
    for start in range(0, len(user_ids), 500):
        chunk = list(user_ids[start : start + 500])
        rows = await conn.execute(
            select(push_rules.c.user_id, push_rules.c.json).where(push_rules.c.user_id.in_(chunk))
        )
        found.update({r.user_id: r.json for r in rows})
    return found


# ------------------------------------------------------------------ push actions


@dataclass(frozen=True)
class PushAction:
    room_id: str
    user_id: str
    stream_ordering: int
    highlight: bool
    #: None stands for ["notify"].
    actions: list[Any] | None
    #: Filled in when read back (the event at ``stream_ordering``).
    event_id: str = ""


_INSERT = (
    "INSERT INTO event_push_actions"
    " (user_id, room_id, stream_ordering, highlight, actions, thread_id)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)
#: The thread ID of the main timeline (events in no thread), as in threaded receipts.
MAIN = "main"


#: A row of ``event_push_actions``: user ID, room ID, stream position, highlight, the
#: actions as JSON when they are more than ``["notify"]`` (else None), and the thread.
ActionRow = tuple[str, str, int, bool, str | None, str]


def stored_actions(actions: Sequence[Any]) -> str | None:
    """How a rule's actions are stored: None for just ``notify`` (nearly every row)."""
    if len(actions) == 1 and actions[0] == "notify":
        return None
    return json.dumps(list(actions), ensure_ascii=False)


async def insert_actions(conn: AsyncConnection, rows: list[ActionRow]) -> None:
    await driver.run(conn, [action_statement(rows)])


def action_statement(rows: list[ActionRow]) -> driver.Statement:
    # The driver's own executemany (one row per notified member of every event, a thousand
    # per event in a large room), in key order: the B-tree is walked once, not jumped
    # around in.
    rows.sort()
    return _INSERT, rows


async def unread_counts(
    conn: AsyncConnection, room_id: str, user_id: str, after: int
) -> tuple[int, int]:
    """(notifications, highlights) of ``user_id`` in the room after stream position ``after``,
    all threads together."""
    return all_threads(
        (await unread_counts_in_rooms(conn, user_id, {room_id: after})).get(room_id, {})
    )


def all_threads(threads: Mapping[str, tuple[int, int]]) -> tuple[int, int]:
    """The (notifications, highlights) of every thread together."""
    return sum(n for n, _ in threads.values()), sum(h for _, h in threads.values())


async def unread_counts_in_rooms(
    conn: AsyncConnection, user_id: str, after: Mapping[str, int]
) -> dict[str, dict[str, tuple[int, int]]]:
    """Unread (notifications, highlights) of many rooms at once, by thread (``MAIN`` or the
    root's event ID): room ID -> position the count starts after.  Rooms and threads
    without notifications are left out."""
    found: dict[str, dict[str, tuple[int, int]]] = {}
    rooms = sorted(after)
    for start in range(0, len(rooms), 200):
        chunk = rooms[start : start + 200]
        sql = (
            "SELECT room_id, thread_id, count(*), sum(CASE WHEN highlight THEN 1 ELSE 0 END)"
            " FROM event_push_actions WHERE user_id = ? AND ("
            + " OR ".join(["(room_id = ? AND stream_ordering > ?)"] * len(chunk))
            + ") GROUP BY room_id, thread_id"
        )
        params: list[Any] = [user_id]
        for room_id in chunk:
            params += [room_id, after[room_id]]
        for room_id, thread_id, count, highlights in await driver.fetchall(conn, sql, params):
            found.setdefault(room_id, {})[thread_id] = (int(count or 0), int(highlights or 0))
    return found


async def badge_count(conn: AsyncConnection, user_id: str) -> int:
    """Unread notifications of the user in every room they are joined to."""
    t = event_push_actions.c
    joined = select(memberships.c.room_id).where(
        memberships.c.user_id == user_id, memberships.c.membership == "join"
    )
    query = select(func.count()).where(t.user_id == user_id, t.room_id.in_(joined))
    return int((await conn.execute(query)).scalar() or 0)


async def delete_read(
    conn: AsyncConnection,
    room_id: str,
    user_id: str,
    upto: int,
    thread_id: str | None = None,
    *,
    read_ts: int = 0,
) -> None:
    """A read receipt: the notifications up to and including ``upto`` are read, in one
    thread (a threaded receipt: ``MAIN`` or a root's event ID) or in all: they leave the
    unread ones for ``read_push_actions`` (``/notifications`` lists them as read)."""
    t = event_push_actions.c
    where = [t.room_id == room_id, t.user_id == user_id, t.stream_ordering <= upto]
    if thread_id is not None:
        where.append(t.thread_id == thread_id)
    # The same columns (schema.py), and when they were read.
    moved = select(*event_push_actions.c, literal(read_ts, BigInteger)).where(*where)
    columns = [c.name for c in read_push_actions.c]
    move = (sqlite_insert if conn.dialect.name == "sqlite" else pg_insert)(read_push_actions)
    await conn.execute(move.from_select(columns, moved).on_conflict_do_nothing())
    await conn.execute(delete(event_push_actions).where(*where))


async def delete_read_before(conn: AsyncConnection, read_before_ms: int) -> int:
    """Forget the notifications read before ``read_before_ms``; how many went."""
    result = await conn.execute(
        delete(read_push_actions).where(read_push_actions.c.read_ts < read_before_ms)
    )
    return int(result.rowcount or 0)


async def delete_for_event(
    conn: AsyncConnection, room_id: str, stream_ordering: int, user_ids: Sequence[str]
) -> None:
    """A redacted event notifies none of ``user_ids`` any more."""
    for table in (event_push_actions, read_push_actions):
        t = table.c
        for start in range(0, len(user_ids), 500):
            await conn.execute(
                delete(table).where(
                    t.user_id.in_(list(user_ids[start : start + 500])),
                    t.room_id == room_id,
                    t.stream_ordering == stream_ordering,
                )
            )


async def delete_for_members(conn: AsyncConnection, room_id: str, user_ids: Iterable[str]) -> None:
    """Users who left a room keep no notifications from it."""
    ids = list(user_ids)
    for table in (event_push_actions, read_push_actions) if ids else ():
        t = table.c
        await conn.execute(delete(table).where(t.room_id == room_id, t.user_id.in_(ids)))


async def actions_after(
    conn: AsyncConnection, user_id: str, after: int, limit: int
) -> list[PushAction]:
    """The user's unread notifications after stream position ``after``, oldest first."""
    t = event_push_actions.c
    rows = await conn.execute(
        select(event_push_actions, events.c.event_id)
        .join(events, events.c.stream_ordering == t.stream_ordering)
        .where(t.user_id == user_id, t.stream_ordering > after)
        .order_by(t.stream_ordering)
        .limit(limit)
    )
    return [
        PushAction(
            r.room_id,
            r.user_id,
            int(r.stream_ordering),
            bool(r.highlight),
            json.loads(r.actions) if r.actions is not None else None,
            r.event_id,
        )
        for r in rows
    ]


# ------------------------------------------------------------------ pushers


@dataclass(frozen=True)
class Pusher:
    user_id: str
    app_id: str
    pushkey: str
    kind: str
    app_display_name: str
    device_display_name: str
    profile_tag: str | None
    lang: str
    data: dict[str, Any]
    device_id: str | None
    pushkey_ts: int
    last_stream_ordering: int
    failing_since: int | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.user_id, self.app_id, self.pushkey)


def _pusher(row: Any) -> Pusher:
    values = dict(row._mapping)
    values["data"] = json.loads(values["data"])
    return Pusher(**values)


def _where(user_id: str, app_id: str, pushkey: str) -> Any:
    t = pushers.c
    return and_(t.user_id == user_id, t.app_id == app_id, t.pushkey == pushkey)


async def get_pushers(conn: AsyncConnection, user_id: str | None = None) -> list[Pusher]:
    """The pushers of a user, or of everyone."""
    query = select(pushers).order_by(pushers.c.user_id, pushers.c.app_id, pushers.c.pushkey)
    if user_id is not None:
        query = query.where(pushers.c.user_id == user_id)
    return [_pusher(r) for r in await conn.execute(query)]


async def get_pusher(
    conn: AsyncConnection, user_id: str, app_id: str, pushkey: str
) -> Pusher | None:
    row = (await conn.execute(select(pushers).where(_where(user_id, app_id, pushkey)))).first()
    return _pusher(row) if row else None


async def get_pushers_by_key(conn: AsyncConnection, app_id: str, pushkey: str) -> list[Pusher]:
    t = pushers.c
    rows = await conn.execute(select(pushers).where(t.app_id == app_id, t.pushkey == pushkey))
    return [_pusher(r) for r in rows]


async def upsert_pusher(conn: AsyncConnection, pusher: Pusher) -> None:
    await conn.execute(delete(pushers).where(_where(*pusher.key)))
    values = {f: getattr(pusher, f) for f in pusher.__dataclass_fields__}
    values["data"] = json.dumps(pusher.data, ensure_ascii=False)
    await conn.execute(insert(pushers).values(**values))


async def delete_pusher(conn: AsyncConnection, user_id: str, app_id: str, pushkey: str) -> bool:
    result = await conn.execute(delete(pushers).where(_where(user_id, app_id, pushkey)))
    return bool(result.rowcount)


async def delete_pushers_of_others(
    conn: AsyncConnection, app_id: str, pushkey: str, user_id: str
) -> None:
    """Without ``append`` a pushkey belongs to one user: other users' pushers for it go."""
    t = pushers.c
    await conn.execute(
        delete(pushers).where(t.app_id == app_id, t.pushkey == pushkey, t.user_id != user_id)
    )


async def delete_pushers_of_devices(
    conn: AsyncConnection,
    user_id: str,
    device_id: str | None = None,
    *,
    except_device: str | None = None,
) -> None:
    """The pushers set with a device's access tokens (every device's when ``device_id`` is
    None, but ``except_device``'s): logging a device out deletes them."""
    t = pushers.c
    query = delete(pushers).where(t.user_id == user_id)
    if device_id is not None:
        query = query.where(t.device_id == device_id)
    if except_device is not None:
        query = query.where((t.device_id != except_device) | t.device_id.is_(None))
    await conn.execute(query)


async def update_pusher_progress(
    conn: AsyncConnection,
    key: tuple[str, str, str],
    last_stream_ordering: int,
    failing_since: int | None,
) -> bool:
    """Record what was sent; False when the pusher no longer exists."""
    result = await conn.execute(
        update(pushers)
        .where(_where(*key))
        .values(last_stream_ordering=last_stream_ordering, failing_since=failing_since)
    )
    return bool(result.rowcount)


# ------------------------------------------------------------------ GET /notifications


@dataclass(frozen=True)
class Notification:
    room_id: str
    stream_ordering: int
    highlight: bool
    #: None stands for ["notify"].
    actions: list[Any] | None
    thread_id: str
    event_id: str
    ts: int


async def notifications_before(
    conn: AsyncConnection, user_id: str, before: int | None, limit: int, highlight_only: bool
) -> list[Notification]:
    """The user's notifications, unread and read, before stream position ``before``
    (None: the newest), newest first."""
    found = [
        *await _notifications_in(event_push_actions, conn, user_id, before, limit, highlight_only),
        *await _notifications_in(read_push_actions, conn, user_id, before, limit, highlight_only),
    ]
    found.sort(key=lambda n: n.stream_ordering, reverse=True)
    return found[:limit]


async def _notifications_in(
    table: Table,
    conn: AsyncConnection,
    user_id: str,
    before: int | None,
    limit: int,
    highlight_only: bool,
) -> list[Notification]:
    t = table.c
    query = (
        select(
            t.room_id,
            t.stream_ordering,
            t.highlight,
            t.actions,
            t.thread_id,
            events.c.event_id,
            events.c.origin_server_ts,
        )
        .join(events, events.c.stream_ordering == t.stream_ordering)
        .where(t.user_id == user_id)
        .order_by(t.stream_ordering.desc())
        .limit(limit)
    )
    if before is not None:
        query = query.where(t.stream_ordering < before)
    if highlight_only:
        query = query.where(t.highlight.is_(True))
    return [
        Notification(
            r.room_id,
            int(r.stream_ordering),
            bool(r.highlight),
            json.loads(r.actions) if r.actions is not None else None,
            r.thread_id,
            r.event_id,
            int(r.origin_server_ts),
        )
        for r in await conn.execute(query)
    ]


async def read_upto(
    conn: AsyncConnection, user_id: str, room_ids: Sequence[str]
) -> dict[tuple[str, str], int]:
    """(room ID, thread ID or "" for an unthreaded receipt) -> the stream position of the
    newest event the user's read receipts (public or private) there point at."""
    r = receipts.c
    rows = await conn.execute(
        select(r.room_id, r.thread_id, func.max(events.c.stream_ordering))
        .join(events, events.c.event_id == r.event_id)
        .where(
            r.user_id == user_id,
            r.room_id.in_(list(room_ids)),
            r.receipt_type.in_(["m.read", "m.read.private"]),
        )
        .group_by(r.room_id, r.thread_id)
    )
    return {(room_id, thread_id): int(position) for room_id, thread_id, position in rows}
