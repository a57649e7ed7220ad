"""Relations between events (``content.m.relates_to``, kept in ``event_relations`` when an
event is stored): the children of an event for ``/relations``, the threads of a room for
``/threads`` (the ``threads`` table, which :mod:`homeserver.storage.events` keeps as replies
are stored and redacted), and what the bundled aggregations (``unsigned.m.relations``) are
made of, each read for a whole page of events at once.

A child counts while it is an accepted timeline event of the parent's room that is not
redacted (a redacted child's relation is gone with its content).  ``upto`` (a stream
position, None: no limit) leaves out children after it: what a departed member may not see.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from homeserver.storage import driver
from homeserver.storage.events import StoredEvent, _event_of

THREAD = "m.thread"
REPLACE = "m.replace"
REFERENCE = "m.reference"
ANNOTATION = "m.annotation"
#: How many levels of relations ``recurse`` follows (Synapse's depth, the spec's minimum).
RECURSION_DEPTH = 3

_CHILD_COLUMNS = (
    "e.event_id, e.stream_ordering, e.room_id, e.json, e.state_group, e.rejected_reason,"
    " e.outlier, e.soft_failed, e.redacted_by"
)
#: ``e`` is an accepted, unredacted timeline event.
_VALID = (
    "NOT e.outlier AND e.rejected_reason IS NULL AND NOT e.soft_failed AND e.redacted_by IS NULL"
)


def _in(column: str, values: Collection[Any]) -> str:
    return f"{column} IN ({driver.placeholders(len(values))})"


def _upto(upto: int | None, params: list[Any]) -> str:
    if upto is None:
        return ""
    params.append(upto)
    return " AND e.stream_ordering <= ?"


async def children(
    conn: AsyncConnection,
    parent: StoredEvent,
    *,
    rel_type: str | None,
    event_type: str | None,
    after: int | None,
    upto: int | None,
    limit: int,
    backwards: bool,
    recurse: bool,
) -> list[StoredEvent]:
    """The events that relate to ``parent`` (with ``recurse``, also those that relate to
    those, down to :data:`RECURSION_DEPTH` levels), in stream order within (after, upto],
    newest first when ``backwards``.  ``rel_type`` and ``event_type`` hold at every level
    (the spec: a child reached only through a non-matching one is left out).  Edits of a
    redacted parent are left out (they would give its content away, as Synapse says)."""
    filters = ["e.room_id = ?", _VALID]
    filter_params: list[Any] = [parent.room_id]
    if rel_type is not None:
        filters.append("r.relation_type = ?")
        filter_params.append(rel_type)
    if event_type is not None:
        filters.append("e.type = ?")
        filter_params.append(event_type)
    where = " AND ".join(filters)
    first = where
    first_params = list(filter_params)
    if parent.redacted_by is not None:
        first += " AND r.relation_type <> ?"
        first_params.append(REPLACE)
    levels = RECURSION_DEPTH if recurse else 1
    bounds = ""
    bound_params: list[Any] = []
    if after is not None:
        bounds += " AND e.stream_ordering > ?"
        bound_params.append(after)
    bounds += _upto(upto, bound_params)
    order = "DESC" if backwards else "ASC"
    sql = (
        "WITH RECURSIVE related (event_id, depth) AS ("
        " SELECT r.event_id, 1 FROM event_relations r JOIN events e ON e.event_id = r.event_id"
        f" WHERE r.relates_to_id = ? AND {first}"
        " UNION ALL"
        " SELECT r.event_id, related.depth + 1 FROM related"
        " JOIN event_relations r ON r.relates_to_id = related.event_id"
        " JOIN events e ON e.event_id = r.event_id"
        f" WHERE related.depth < ? AND {where})"
        f" SELECT {_CHILD_COLUMNS} FROM related JOIN events e ON e.event_id = related.event_id"
        f" WHERE 1 = 1{bounds} ORDER BY e.stream_ordering {order} LIMIT ?"
    )
    params = [parent.event_id, *first_params, levels, *filter_params, *bound_params, limit]
    return [_event_of(row) for row in await driver.fetchall(conn, sql, params)]


@dataclass(frozen=True)
class ThreadSummary:
    #: Threaded replies (less those of ignored users).
    count: int
    #: The stream position of the latest of them.
    latest: int
    #: Whether the user asking sent one of them.
    participated: bool


async def thread_summaries(
    conn: AsyncConnection,
    roots: Collection[str],
    user_id: str,
    *,
    ignored: Collection[str],
    upto: int | None,
) -> dict[str, ThreadSummary]:
    """The threads of those of ``roots`` that have threaded replies (of the root's room),
    but replies from ``ignored`` users."""
    if not roots:
        return {}
    params: list[Any] = [user_id, THREAD, *roots]
    sql = (
        "SELECT r.relates_to_id, COUNT(*), MAX(e.stream_ordering),"
        " MAX(CASE WHEN e.sender = ? THEN 1 ELSE 0 END)"
        " FROM event_relations r JOIN events e ON e.event_id = r.event_id"
        " JOIN events p ON p.event_id = r.relates_to_id AND p.room_id = e.room_id"
        f" WHERE r.relation_type = ? AND {_in('r.relates_to_id', roots)} AND {_VALID}"
    )
    if ignored:
        sql += f" AND NOT {_in('e.sender', ignored)}"
        params += list(ignored)
    sql += _upto(upto, params) + " GROUP BY r.relates_to_id"
    return {
        root: ThreadSummary(int(count), int(latest), bool(mine))
        for root, count, latest, mine in await driver.fetchall(conn, sql, params)
    }


async def participated(conn: AsyncConnection, roots: Collection[str], user_id: str) -> set[str]:
    """Those of ``roots`` in whose thread ``user_id`` replied."""
    if not roots:
        return set()
    sql = (
        "SELECT DISTINCT r.relates_to_id FROM event_relations r"
        " JOIN events e ON e.event_id = r.event_id"
        f" WHERE r.relation_type = ? AND {_in('r.relates_to_id', roots)} AND {_VALID}"
        " AND e.sender = ?"
    )
    rows = await driver.fetchall(conn, sql, [THREAD, *roots, user_id])
    return {row[0] for row in rows}


async def events_at(conn: AsyncConnection, positions: Collection[int]) -> list[StoredEvent]:
    """The events at these stream positions."""
    if not positions:
        return []
    sql = f"SELECT {_CHILD_COLUMNS} FROM events e WHERE {_in('e.stream_ordering', positions)}"
    return [_event_of(row) for row in await driver.fetchall(conn, sql, list(positions))]


async def edits(
    conn: AsyncConnection, originals: Collection[str], *, upto: int | None
) -> dict[str, list[StoredEvent]]:
    """The edits (``m.replace``) of each of ``originals`` that the spec lets replace it:
    same room, sender and type, neither a state event, the original not redacted; the most
    recent first (by ``origin_server_ts``, then event ID, as the spec orders them)."""
    if not originals:
        return {}
    params: list[Any] = [REPLACE, *originals]
    sql = (
        f"SELECT r.relates_to_id, {_CHILD_COLUMNS}"
        " FROM event_relations r JOIN events e ON e.event_id = r.event_id"
        " JOIN events o ON o.event_id = r.relates_to_id AND o.room_id = e.room_id"
        " AND o.sender = e.sender AND o.type = e.type"
        f" WHERE r.relation_type = ? AND {_in('r.relates_to_id', originals)} AND {_VALID}"
        " AND o.state_key IS NULL AND e.state_key IS NULL AND o.redacted_by IS NULL"
        " AND NOT o.outlier"
    )
    sql += _upto(upto, params) + " ORDER BY e.origin_server_ts DESC, e.event_id DESC"
    found: dict[str, list[StoredEvent]] = {}
    for row in await driver.fetchall(conn, sql, params):
        found.setdefault(row[0], []).append(_event_of(row[1:]))
    return found


async def references(
    conn: AsyncConnection,
    parents: Collection[str],
    *,
    ignored: Collection[str],
    upto: int | None,
) -> dict[str, list[str]]:
    """The events that ``m.reference`` each of ``parents`` (of its room), oldest first,
    but those of ``ignored`` users."""
    if not parents:
        return {}
    params: list[Any] = [REFERENCE, *parents]
    sql = (
        "SELECT r.relates_to_id, e.event_id FROM event_relations r"
        " JOIN events e ON e.event_id = r.event_id"
        " JOIN events p ON p.event_id = r.relates_to_id AND p.room_id = e.room_id"
        f" WHERE r.relation_type = ? AND {_in('r.relates_to_id', parents)} AND {_VALID}"
    )
    if ignored:
        sql += f" AND NOT {_in('e.sender', ignored)}"
        params += list(ignored)
    sql += _upto(upto, params) + " ORDER BY e.stream_ordering"
    found: dict[str, list[str]] = {}
    for parent, child in await driver.fetchall(conn, sql, params):
        found.setdefault(parent, []).append(child)
    return found


async def threads(
    conn: AsyncConnection,
    room_id: str,
    *,
    before: int | None,
    upto: int | None,
    limit: int,
) -> list[tuple[str, int]]:
    """The room's thread roots with the stream position of their latest reply, the most
    recently active first, only threads whose latest reply (no later than ``upto``) is
    before ``before``."""
    if upto is None:
        params: list[Any] = [room_id]
        sql = "SELECT thread_id, latest_stream_ordering FROM threads WHERE room_id = ?"
        if before is not None:
            sql += " AND latest_stream_ordering < ?"
            params.append(before)
        sql += " ORDER BY latest_stream_ordering DESC LIMIT ?"
        rows = await driver.fetchall(conn, sql, [*params, limit])
        return [(root, int(latest)) for root, latest in rows]
    # A departed member: their threads as at their leave (read from the relations).
    params = [room_id, THREAD]
    sql = (
        "SELECT r.relates_to_id, MAX(e.stream_ordering) AS latest"
        " FROM events e JOIN event_relations r ON r.event_id = e.event_id"
        f" WHERE e.room_id = ? AND r.relation_type = ? AND {_VALID}"
    )
    sql += _upto(upto, params) + " GROUP BY r.relates_to_id"
    if before is not None:
        sql += " HAVING MAX(e.stream_ordering) < ?"
        params.append(before)
    sql += " ORDER BY latest DESC LIMIT ?"
    params.append(limit)
    return [(root, int(latest)) for root, latest in await driver.fetchall(conn, sql, params)]


async def annotation_keys(
    conn: AsyncConnection, parent_id: str, event_type: str, sender: str
) -> set[str]:
    """The keys of ``sender``'s unredacted annotations of ``event_type`` on ``parent_id``."""
    sql = (
        "SELECT e.json FROM event_relations r JOIN events e ON e.event_id = r.event_id"
        f" WHERE r.relates_to_id = ? AND r.relation_type = ? AND {_VALID}"
        " AND e.type = ? AND e.sender = ?"
    )
    keys: set[str] = set()
    for (raw,) in await driver.fetchall(conn, sql, [parent_id, ANNOTATION, event_type, sender]):
        relates = json.loads(raw).get("content", {}).get("m.relates_to", {})
        if isinstance(relates, dict) and isinstance(relates.get("key"), str):
            keys.add(relates["key"])
    return keys
