"""The full-text index of room events (``POST /search``): writing it, reading it.

``event_search`` (schema.py) holds one row per indexed event (its stream position, event
ID, room and key); the text itself is indexed per dialect, as migration 0005 creates it:

- SQLite: the FTS5 table ``event_search_fts`` (``tokenize='ascii'``), whose rowid is the
  event's stream position, over the event's bigram tokens (storage/search_text.py);
- PostgreSQL: the ``tsvector`` column ``event_search.vector`` with a GIN index, the tokens
  written with their positions so that ``<->`` finds consecutive bigrams.

Rows are written in the transaction that stores the events (a hook of the room service),
never for an event already redacted, and removed when their event is redacted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from homeserver.storage import driver, search_text
from homeserver.storage.events import _COLUMNS, StoredEvent, _event_of, _types_sql

#: (stream position, event ID, room ID, key, tokens) of an event to index.
IndexRow = tuple[int, str, str, str, list[str]]

_NOT_REDACTED = (
    "NOT EXISTS (SELECT 1 FROM events WHERE stream_ordering = ? AND redacted_by IS NOT NULL)"
)


def row_of(event: StoredEvent) -> IndexRow | None:
    """What the index holds of an event, or None (not a kind it indexes, not accepted)."""
    if event.outlier or event.rejected_reason or event.soft_failed or event.redacted_by:
        return None
    found = search_text.indexed(event.type, event.pdu.get("content"))
    if found is None:
        return None
    words = search_text.tokens(found[1])
    if not words:
        return None
    return event.stream_ordering, event.event_id, event.room_id, found[0], words


def index_statements(is_sqlite: bool, rows: Sequence[IndexRow]) -> list[driver.Statement]:
    """The statements that index ``rows`` (run after the events' own rows are written): an
    event already indexed or already redacted is left out."""
    if not rows:
        return []
    if is_sqlite:
        return [
            (
                "INSERT INTO event_search_fts (rowid, words) SELECT ?, ? WHERE NOT EXISTS"
                " (SELECT 1 FROM event_search WHERE stream_ordering = ?) AND " + _NOT_REDACTED,
                [(r[0], " ".join(r[4]), r[0], r[0]) for r in rows],
            ),
            (
                "INSERT INTO event_search (stream_ordering, event_id, room_id, key)"
                " SELECT ?, ?, ?, ? WHERE " + _NOT_REDACTED + " ON CONFLICT DO NOTHING",
                [(*r[:4], r[0]) for r in rows],
            ),
        ]
    return [
        (
            "INSERT INTO event_search (stream_ordering, event_id, room_id, key, vector)"
            " SELECT CAST(? AS BIGINT), CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT),"
            " CAST(? AS tsvector) WHERE " + _NOT_REDACTED + " ON CONFLICT DO NOTHING",
            [(*r[:4], search_text.tsvector(r[4]), r[0]) for r in rows],
        )
    ]


async def forget_event(conn: AsyncConnection, event_id: str) -> None:
    """Take a (redacted) event out of the index."""
    sqlite = conn.dialect.name == "sqlite"
    statements: list[driver.Statement] = [
        ("DELETE FROM event_search WHERE event_id = ?", [(event_id,)])
    ]
    if sqlite:
        statements.insert(
            0,
            (
                "DELETE FROM event_search_fts WHERE rowid IN"
                " (SELECT stream_ordering FROM event_search WHERE event_id = ?)",
                [(event_id,)],
            ),
        )
    await driver.run(conn, statements)


@dataclass(frozen=True)
class SearchWhere:
    """What a search matches: a query, in rooms, with a RoomEventFilter's conditions."""

    query: search_text.Query
    rooms: Sequence[str]
    keys: Sequence[str] = search_text.ALL_KEYS
    types: Sequence[str] | None = None
    not_types: Sequence[str] = ()
    senders: Sequence[str] | None = None
    not_senders: Sequence[str] = ()
    #: Stream positions below which to look (``recent`` pagination).
    before: int | None = None
    #: Matches are many (:func:`count` reached its cap): on PostgreSQL, read newest first
    #: rather than through the GIN index (see :func:`_from_where`).
    dense: bool = False


#: ``rank`` orders the most recent this many matches (as Synapse ranks at most 500).
RANK_WINDOW = 1000


def _from_where(sqlite: bool, where: SearchWhere, events: bool = True) -> tuple[str, list[Any]]:
    """The FROM and WHERE of a search (the events as ``e``, joined when ``events`` or
    when the filter needs them), and their values."""
    events = events or where.types is not None or bool(where.not_types)
    events = events or where.senders is not None or bool(where.not_senders)
    join = " JOIN events e ON e.stream_ordering = s.stream_ordering" if events else ""
    if sqlite:
        sql = (
            " FROM event_search_fts JOIN event_search s ON s.stream_ordering ="
            f" event_search_fts.rowid{join} WHERE event_search_fts MATCH ?"
        )
        values: list[Any] = [where.query.fts5()]
    else:
        # The planner multiplies the frequencies of a phrase's bigrams (which go together)
        # and so takes the GIN index for a common phrase, reading every match to sort them
        # (0.9 s for 38,000 matches of 住民説明 at 1,000,000 events).  Where the matches
        # are known to be many, the match is written as a function the index cannot serve,
        # so the events are read newest first until the page is full (1 ms).
        match = (
            "ts_match_vq(s.vector, CAST(? AS tsquery))"
            if where.dense
            else ("s.vector @@ CAST(? AS tsquery)")
        )
        sql = f" FROM event_search s{join} WHERE {match}"
        values = [where.query.tsquery()]
    conditions = [
        f"s.room_id IN ({driver.placeholders(len(where.rooms))})",
        f"s.key IN ({driver.placeholders(len(where.keys))})",
    ]
    values += [*where.rooms, *where.keys]
    if events:
        conditions.append("e.redacted_by IS NULL")
    if where.types is not None:
        types_sql, more = _types_sql(where.types)
        conditions.append(types_sql.replace("type", "e.type"))
        values += more
    if where.not_types:
        types_sql, more = _types_sql(where.not_types)
        conditions.append("NOT " + types_sql.replace("type", "e.type"))
        values += more
    if where.senders is not None:
        conditions.append(f"e.sender IN ({driver.placeholders(len(where.senders))})")
        values += list(where.senders)
    if where.not_senders:
        conditions.append(f"e.sender NOT IN ({driver.placeholders(len(where.not_senders))})")
        values += list(where.not_senders)
    if where.before is not None:
        conditions.append("s.stream_ordering < ?")
        values.append(where.before)
    return sql + "".join(" AND " + c for c in conditions), values


_EVENT_COLUMNS = ", ".join("e." + c.name for c in _COLUMNS)
_HIT_COLUMNS = ", ".join("hits." + c.name for c in _COLUMNS)


async def search(
    conn: AsyncConnection, where: SearchWhere, *, by_rank: bool, limit: int, offset: int = 0
) -> list[tuple[StoredEvent, float]]:
    """The events that match, each with its rank (higher: closer): most recent first, or
    the :data:`RANK_WINDOW` most recent best ranked first; ``offset`` skips that many
    (rank pagination)."""
    if where.query.empty or not where.rooms or not where.keys:
        return []
    sqlite = conn.dialect.name == "sqlite"
    body, values = _from_where(sqlite, where)
    if sqlite:
        # The FTS table's own rowid order: read from its index, newest first, no sort.
        newest, rank = "event_search_fts.rowid DESC", "-bm25(event_search_fts)"
    else:
        # Few matches: through the GIN index, then sorted ("+ 0" keeps the planner from
        # reading the whole table newest first hoping to meet them: 0.77 s for a word that
        # is nowhere, at 1,000,000 events).  Many: newest first (see _from_where).
        newest = "s.stream_ordering DESC" if where.dense else "s.stream_ordering + 0 DESC"
        rank = "ts_rank(s.vector, CAST(? AS tsquery))"
        values = [where.query.tsquery(), *values]
    recent = f"SELECT {_EVENT_COLUMNS}, {rank} AS rank{body} ORDER BY {newest}"
    if by_rank:
        sql = (
            f"SELECT {_HIT_COLUMNS}, hits.rank FROM ({recent} LIMIT {RANK_WINDOW}) AS hits"
            " ORDER BY hits.rank DESC, hits.stream_ordering DESC LIMIT ? OFFSET ?"
        )
        values += [limit, offset]
    else:
        sql = recent + " LIMIT ?"
        values.append(limit)
    rows = await driver.fetchall(conn, sql, values)
    return [(_event_of(r[:-1]), float(r[-1])) for r in rows]


async def count(conn: AsyncConnection, where: SearchWhere, cap: int) -> int:
    """How many events match, counted up to ``cap`` (redacted events have no index rows:
    the events are read only when the filter needs them)."""
    if where.query.empty or not where.rooms or not where.keys:
        return 0
    body, values = _from_where(conn.dialect.name == "sqlite", where, events=False)
    rows = await driver.fetchall(
        conn, f"SELECT count(*) FROM (SELECT 1{body} LIMIT ?) AS hits", [*values, cap]
    )
    return int(rows[0][0])


async def unindexed_events(
    conn: AsyncConnection, after: int | None, limit: int
) -> list[StoredEvent]:
    """Events of the kinds the index holds and not in it yet, in stream order after
    ``after`` (to index existing history)."""
    types = list(search_text.KEY_OF_TYPE)
    sql = (
        f"SELECT {_EVENT_COLUMNS} FROM events e WHERE e.type IN"
        f" ({driver.placeholders(len(types))}) AND NOT e.outlier AND e.rejected_reason IS NULL"
        " AND NOT e.soft_failed AND e.redacted_by IS NULL AND NOT EXISTS"
        " (SELECT 1 FROM event_search s WHERE s.stream_ordering = e.stream_ordering)"
    )
    values: list[Any] = list(types)
    if after is not None:
        sql += " AND e.stream_ordering > ?"
        values.append(after)
    rows = await driver.fetchall(
        conn, sql + " ORDER BY e.stream_ordering LIMIT ?", [*values, limit]
    )
    return [_event_of(r) for r in rows]
