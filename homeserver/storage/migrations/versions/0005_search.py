"""full-text search of room events

``event_search`` (one row per indexed event) and the per-dialect index of its text:
SQLite, the FTS5 table ``event_search_fts`` (``tokenize='ascii'``, rowid: the event's
stream position); PostgreSQL, a ``tsvector`` column ``vector`` with a GIN index.  The
events already stored are indexed here (messages' bodies, rooms' names and topics).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

from homeserver.storage import search_text

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_BATCH = 5000


def upgrade() -> None:
    op.create_table(
        "event_search",
        sa.Column("stream_ordering", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("event_id", sa.String(length=255), nullable=False),
        sa.Column("room_id", sa.String(length=255), nullable=False),
        sa.Column("key", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("stream_ordering", name=op.f("pk_event_search")),
    )
    op.create_index(op.f("ix_event_search_event_id"), "event_search", ["event_id"], unique=False)
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        op.execute("CREATE VIRTUAL TABLE event_search_fts USING fts5(words, tokenize='ascii')")
    else:
        op.execute("ALTER TABLE event_search ADD COLUMN vector tsvector")
        op.execute("CREATE INDEX ix_event_search_vector ON event_search USING GIN (vector)")
    _index_existing(bind)
    if bind.dialect.name != "sqlite":
        # The planner needs the tsvector's statistics to choose between reading newest
        # first and the GIN index; autovacuum would take a while to gather them.
        op.execute("ANALYZE event_search")


def _index_existing(bind: sa.engine.Connection) -> None:
    """Index the events stored before this revision."""
    sqlite = bind.dialect.name == "sqlite"
    select = sa.text(
        "SELECT stream_ordering, event_id, room_id, type, json FROM events"
        " WHERE type IN ('m.room.message', 'm.room.name', 'm.room.topic')"
        " AND NOT outlier AND rejected_reason IS NULL AND NOT soft_failed"
        " AND redacted_by IS NULL AND stream_ordering > :after"
        " ORDER BY stream_ordering LIMIT :limit"
    )
    after = -(2**62)
    while True:
        rows = bind.execute(select, {"after": after, "limit": _BATCH}).all()
        if not rows:
            return
        after = rows[-1][0]
        found = []
        for position, event_id, room_id, event_type, text in rows:
            content = json.loads(text).get("content")
            hit = search_text.indexed(event_type, content)
            words = search_text.tokens(hit[1]) if hit else []
            if hit and words:
                found.append({"s": position, "e": event_id, "r": room_id, "k": hit[0], "w": words})
        if not found:
            continue
        if sqlite:
            bind.execute(
                sa.text("INSERT INTO event_search_fts (rowid, words) VALUES (:s, :w)"),
                [{"s": f["s"], "w": " ".join(f["w"])} for f in found],
            )
            bind.execute(
                sa.text(
                    "INSERT INTO event_search (stream_ordering, event_id, room_id, key)"
                    " VALUES (:s, :e, :r, :k)"
                ),
                [{k: v for k, v in f.items() if k != "w"} for f in found],
            )
        else:
            bind.execute(
                sa.text(
                    "INSERT INTO event_search (stream_ordering, event_id, room_id, key, vector)"
                    " VALUES (:s, :e, :r, :k, CAST(:w AS tsvector))"
                ),
                [{**f, "w": search_text.tsvector(f["w"])} for f in found],
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE event_search_fts")
    op.drop_index(op.f("ix_event_search_event_id"), table_name="event_search")
    op.drop_table("event_search")
