"""Local directory search over HTTP on both databases: Japanese matching, and what an
attacker may send (wildcards, SQL, huge queries, no token)."""

from __future__ import annotations

from pathlib import Path

from tests.homeserver.municipal.directory.helpers import (
    NEMURO,
    SEARCH,
    admin_of,
    directory_node,
    import_rows,
    names,
    search,
)


async def test_search_by_name_reading_department_title_and_code(
    tmp_path: Path, db_url: str
) -> None:
    async with directory_node(tmp_path / "node", db_url) as node, node.client() as client:
        admin = await admin_of(node, client)
        report = await import_rows(admin, NEMURO)
        assert report["counts"] == {"add": 5, "change": 0, "remove": 0}
        alice = await client.register("alice")
        found = await search(alice, "山田")
        assert names(found) == ["山田 太郎"]
        entry = found["results"][0]
        assert entry == {
            "name": "山田 太郎", "reading": "やまだたろう", "department": "総務部/総務課",
            "title": "課長", "extension": "1201", "user_id": f"@yamada:{node.server_name}",
            "org": {"code": "012238", "name": "根室市役所", "reading": "ねむろしやくしょ",
                    "server": node.server_name},
        }  # fmt: skip
        assert found["limited"] is False and "partial" not in found
        # No spaces needed, and spaces allowed: every word must match.
        assert names(await search(alice, "山田太郎")) == ["山田 太郎"]
        assert names(await search(alice, "山田　課長")) == ["山田 太郎"]
        assert names(await search(alice, "山田 主任")) == []
        # Readings: hiragana, katakana, half-width katakana; derived from kanji when the
        # file gives none (鈴木 一郎 has no よみ).
        for term in ("やまだ", "ヤマダ", "ﾔﾏﾀﾞ"):
            assert names(await search(alice, term)) == ["山田 太郎"], term
        assert names(await search(alice, "すずき")) == ["鈴木 一郎"]
        # Department (by a nested part, by its reading), title, code, organisation.
        assert names(await search(alice, "情報政策")) == ["鈴木 一郎"]
        assert names(await search(alice, "そうむか")) == ["佐藤 花子", "山田 太郎"]
        assert names(await search(alice, "総務部")) == ["佐藤 花子", "鈴木 一郎", "山田 太郎"]
        assert names(await search(alice, "指導主事")) == ["高橋 美咲"]
        assert len((await search(alice, "012238"))["results"]) == 5
        assert names(await search(alice, "病院")) == ["田中 健"]
        assert names(await search(alice, "ねむろしきょういく")) == ["高橋 美咲"]
        assert names(await search(alice, "教育委員会")) == ["高橋 美咲"]
        # Full-width digits find the extension's organisation code as well.
        assert len((await search(alice, "０１２２３８"))["results"]) == 5
        limited = await search(alice, "根室", limit=2)
        assert len(limited["results"]) == 2 and limited["limited"] is True


async def test_what_an_attacker_sends(tmp_path: Path, db_url: str) -> None:
    async with directory_node(tmp_path / "node", db_url) as node, node.client() as client:
        admin = await admin_of(node, client)
        await import_rows(admin, [*NEMURO, "012238,根室市役所,,総務課,100%_達成,,,,"])
        mallory = await client.register("mallory")
        # LIKE wildcards are literal: '%' and '_' find only names that contain them.
        assert names(await search(mallory, "%")) == ["100%_達成"]
        assert names(await search(mallory, "_")) == ["100%_達成"]
        assert names(await search(mallory, "%%")) == []
        assert names(await search(mallory, "\\")) == []
        # SQL in the query is text.
        for attack in ("' OR 1=1 --", "'; DROP TABLE directory_staff; --", '" OR ""="'):
            assert names(await search(mallory, attack)) == [], attack
        assert len((await search(mallory, "根室"))["results"]) == 6  # the table is still there
        # A match never spans two fields (name + title).
        assert names(await search(mallory, "太郎課長")) == []
        # Too long, too many words, wrong types, no token.
        huge = await mallory.request("POST", SEARCH, {"search_term": "あ" * 101})
        assert (huge.status, huge.body["errcode"]) == (400, "M_INVALID_PARAM")
        words = await mallory.request("POST", SEARCH, {"search_term": "a b c d e f"})
        assert (words.status, words.body["errcode"]) == (400, "M_INVALID_PARAM")
        body = await mallory.request("POST", SEARCH, {"search_term": 5})
        assert (body.status, body.body["errcode"]) == (400, "M_MISSING_PARAM")
        limit = await mallory.request("POST", SEARCH, {"search_term": "x", "limit": -1})
        assert (limit.status, limit.body["errcode"]) == (400, "M_BAD_JSON")
        megabyte = await mallory.request("POST", SEARCH, {"search_term": "x" * 1_000_000})
        assert megabyte.status in (400, 413) and megabyte.body["errcode"] in (
            "M_INVALID_PARAM", "M_TOO_LARGE",
        )  # fmt: skip
        anonymous = await client.request("POST", SEARCH, {"search_term": "山田"})
        assert (anonymous.status, anonymous.body["errcode"]) == (401, "M_MISSING_TOKEN")
        # The limit is capped: at most 50 results whatever is asked.
        capped = await search(mallory, "根室", limit=10_000)
        assert len(capped["results"]) == 6
        assert names(await search(mallory, "   ")) == []
