"""The search index's text (pure) and its migration: events stored before migration 0005
are indexed by it (but redacted ones), on both databases."""

from __future__ import annotations

from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig

from homeserver.storage.database import MIGRATIONS
from homeserver.storage.search_text import normalise, parse_query, tokens, tsvector
from tests.homeserver.conftest import Node

V3 = "/_matrix/client/v3"


def test_tokens_and_queries() -> None:
    assert normalise("ＡＢＣｶﾀｶﾅ") == "abcカタカナ"
    assert tokens("地域防災計画") == ["地域", "域防", "防災", "災計", "計画", "画"]
    assert tokens("防災、A") == ["防災", "災", "a"]
    query = parse_query("防災計画 x")
    assert query.fts5() == '"防災 災計 計画" AND "x" *'
    assert query.tsquery() == "('防災' <-> '災計' <-> '計画') & 'x':*"
    assert parse_query("、。").empty
    assert tsvector(["防災", "災"]) == "'防災':1 '災':2"


def _alembic(connection: Any, verb: str, revision: str) -> None:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    getattr(command, verb)(cfg, revision)


async def test_migration_indexes_existing_events(node: Node) -> None:
    async with node.client() as c:
        alice = await c.register("alice")
        room = await alice.create_room(topic="防災情報の共有")
        kept = await alice.send(room, "地域防災計画の説明会")
        gone = await alice.send(room, "防災無線の不具合")
        await alice.ok("PUT", f"{V3}/rooms/{room}/redact/{gone}/r1", {})

        async def found() -> list[str]:
            answer = await alice.ok(
                "POST", f"{V3}/search",
                {"search_categories": {"room_events": {"search_term": "防災"}}},
            )  # fmt: skip
            results = answer["search_categories"]["room_events"]["results"]
            return sorted(r["result"]["event_id"] for r in results)

        before = await found()
        engine = node.services.db.engine
        async with engine.begin() as conn:
            await conn.run_sync(lambda sync: _alembic(sync, "downgrade", "0003"))
        async with engine.begin() as conn:
            await conn.run_sync(lambda sync: _alembic(sync, "upgrade", "head"))
        after = await found()
        assert before == after
        assert kept in after and gone not in after and len(after) == 2  # and the topic
