"""Migration 0006: a node made before it gets the threads it already holds, each with its
latest accepted, unredacted reply."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from homeserver.storage.database import open_database
from tests.homeserver.storage.test_migrations import _alembic

_EVENT = (
    "INSERT INTO events (stream_ordering, event_id, room_id, type, sender, depth,"
    " origin_server_ts, json, outlier, soft_failed, redacted_by)"
    " VALUES (:pos, :id, '!r:x', 'm.room.message', '@a:x', :pos, 0, '{}', :outlier, false,"
    " :redacted)"
)


async def test_threads_are_filled_from_the_relations_already_stored(db_url: str) -> None:
    db = await open_database(db_url)
    await db.close()
    engine = create_async_engine(db_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(lambda sync: _alembic(sync, "downgrade", "0003"))
            rows = [
                # (position, event, root, outlier, redacted by)
                (1, "$root", None, False, None),
                (2, "$reply1", "$root", False, None),
                (3, "$reply2", "$root", False, None),
                (4, "$reply3", "$root", False, "$redaction"),
                (5, "$outlier", "$root", True, None),
                (6, "$root2", None, False, None),
                (7, "$gone", "$root2", False, "$redaction"),
            ]
            for pos, event_id, root, outlier, redacted in rows:
                await conn.execute(
                    text(_EVENT),
                    {"pos": pos, "id": event_id, "outlier": outlier, "redacted": redacted},
                )
                if root:
                    await conn.execute(
                        text(
                            "INSERT INTO event_relations (event_id, relates_to_id, relation_type)"
                            " VALUES (:id, :root, 'm.thread')"
                        ),
                        {"id": event_id, "root": root},
                    )
    finally:
        await engine.dispose()
    db = await open_database(db_url)
    try:
        async with db.read() as conn:
            found = (await conn.execute(text("SELECT * FROM threads"))).all()
        assert [tuple(r) for r in found] == [("!r:x", "$root", 3)]
    finally:
        await db.close()
