"""``POST /search`` over HTTP on both databases: substring search in Japanese (no word
boundaries), ordering, pagination, filters, context, groupings and state.  Responses are
validated against the spec's OpenAPI when the run has it."""

from __future__ import annotations

from typing import Any

import pytest

from homeserver.rooms import search as search_service
from tests.homeserver.client import User
from tests.homeserver.conftest import Node
from tests.homeserver.openapi import ClientServerSpec, ValidatingClient

SEARCH = "/_matrix/client/v3/search"


async def search(user: User, term: str, next_batch: str | None = None, **criteria: Any) -> Any:
    body = {"search_categories": {"room_events": {"search_term": term, **criteria}}}
    params = {"next_batch": next_batch} if next_batch else None
    found = await user.ok("POST", SEARCH, body, params=params)
    return found["search_categories"]["room_events"]


def bodies(found: Any) -> list[str]:
    return [r["result"]["content"]["body"] for r in found["results"]]


async def test_japanese_substrings(node: Node, openapi: ClientServerSpec | None) -> None:
    async with ValidatingClient(node.base_url, openapi) as c:
        alice = await c.register("alice")
        room = await alice.create_room(name="防災訓練の連絡", topic="地域防災計画の見直し")
        texts = [
            "令和7年度地域防災計画の改定について",
            "避難所の開設手順を確認してください",
            "ｶﾀｶﾅの半角テキストとＡＢＣ全角",
            "Wi-Fi の設定は情報政策課へ。VPN接続も同様",
            "明日の会議は10時からです",
            "ハザードマップを更新しました",
        ]
        for text in texts:
            await alice.send(room, text)

        # A 2-character word inside a longer run of kanji.
        assert bodies(await search(alice, "防災", keys=["content.body"])) == [texts[0]]
        # ...and in the room's name and topic (all keys by default).
        found = await search(alice, "防災")
        kinds = sorted(r["result"]["type"] for r in found["results"])
        assert kinds == ["m.room.message", "m.room.name", "m.room.topic"]
        assert found["count"] == 3
        assert "防災" in found["highlights"]
        # Longer substrings, katakana, and both ways between half and full width and case.
        assert bodies(await search(alice, "防災計画の改定")) == [texts[0]]
        assert bodies(await search(alice, "開設手順")) == [texts[1]]
        assert bodies(await search(alice, "ハザード")) == [texts[5]]
        assert bodies(await search(alice, "カタカナ")) == [texts[2]]
        assert bodies(await search(alice, "ｶﾀｶﾅ")) == [texts[2]]
        assert bodies(await search(alice, "abc")) == [texts[2]]
        assert bodies(await search(alice, "ＡＢＣ")) == [texts[2]]
        assert bodies(await search(alice, "vpn接続")) == [texts[3]]
        assert bodies(await search(alice, "wi fi")) == [texts[3]]
        assert bodies(await search(alice, "１０時")) == [texts[4]]
        # Every word must be found; words may be anywhere.
        assert bodies(await search(alice, "会議 10時")) == [texts[4]]
        assert bodies(await search(alice, "会議 防災")) == []
        # One character: anywhere in a run, also at its end.
        assert bodies(await search(alice, "避", keys=["content.body"])) == [texts[1]]
        assert bodies(await search(alice, "様", keys=["content.body"])) == [texts[3]]
        # Not a substring: the characters apart, or across punctuation.
        assert bodies(await search(alice, "防計")) == []
        assert bodies(await search(alice, "課vpn")) == []
        # Nothing to look for.
        assert (await search(alice, "、。！"))["results"] == []
        assert (await search(alice, ""))["results"] == []
        c.check("POST /_matrix/client/v3/search")


async def test_order_pagination_and_filters(node: Node, openapi: ClientServerSpec | None) -> None:
    async with ValidatingClient(node.base_url, openapi) as c:
        alice = await c.register("alice")
        bob = await c.register("bob")
        room_a = await alice.create_room(preset="public_chat")
        room_b = await alice.create_room(preset="public_chat")
        await bob.join(room_a)
        await bob.join(room_b)
        sent = []
        for i in range(7):
            sender = alice if i % 2 == 0 else bob
            room = room_a if i < 4 else room_b
            sent.append(await sender.send(room, f"防災無線の点検 その{i}"))
        await alice.send(room_a, "関係のない話")

        # recent: newest first, paginated by next_batch until it is absent.
        filt = {"limit": 3}
        page = await search(alice, "防災無線", order_by="recent", filter=filt)
        assert page["count"] == 7
        ids = [r["result"]["event_id"] for r in page["results"]]
        assert ids == sent[::-1][:3]
        seen = list(ids)
        while "next_batch" in page:
            page = await search(
                alice, "防災無線", page["next_batch"], order_by="recent", filter=filt
            )
            seen += [r["result"]["event_id"] for r in page["results"]]
        assert seen == sent[::-1]

        # rank: every match once over the pages, ranks not increasing.
        page = await search(alice, "点検", filter={"limit": 4})
        ranked = list(page["results"])
        assert "next_batch" in page
        page = await search(alice, "点検", page["next_batch"], filter={"limit": 4})
        ranked += page["results"]
        assert "next_batch" not in page
        assert sorted(r["result"]["event_id"] for r in ranked) == sorted(sent)
        ranks = [r["rank"] for r in ranked]
        assert ranks == sorted(ranks, reverse=True)

        # Filters: rooms, not_rooms, senders, not_senders, types.
        def ids_of(found: Any) -> set[str]:
            return {r["result"]["event_id"] for r in found["results"]}

        only_b = await search(alice, "点検", filter={"rooms": [room_b]})
        assert ids_of(only_b) == set(sent[4:])
        not_b = await search(alice, "点検", filter={"not_rooms": [room_b]})
        assert ids_of(not_b) == set(sent[:4])
        by_bob = await search(alice, "点検", filter={"senders": [bob.user_id]})
        assert ids_of(by_bob) == {sent[1], sent[3], sent[5]}
        not_bob = await search(alice, "点検", filter={"not_senders": [bob.user_id]})
        assert ids_of(not_bob) == {sent[0], sent[2], sent[4], sent[6]}
        assert ids_of(await search(alice, "点検", filter={"types": ["m.room.name"]})) == set()
        assert ids_of(await search(alice, "点検", filter={"not_types": ["m.room.*"]})) == set()
        assert ids_of(await search(alice, "点検", filter={"contains_url": True})) == set()

        # Groupings: by room (with a next_batch per room when there is more) and sender.
        grouped = await search(
            alice, "点検", order_by="recent", filter={"limit": 5},
            groupings={"group_by": [{"key": "room_id"}, {"key": "sender"}]},
        )  # fmt: skip
        rooms = grouped["groups"]["room_id"]
        assert set(rooms) == {room_a, room_b}
        assert rooms[room_b]["results"] == sent[4:][::-1]
        assert rooms[room_b]["order"] == 1 and rooms[room_a]["order"] == 2
        assert set(grouped["groups"]["sender"]) == {alice.user_id, bob.user_id}
        # A room group's next_batch goes on in that room only.
        more = await search(
            alice, "点検", rooms[room_a]["next_batch"], order_by="recent", filter={"limit": 5}
        )
        assert [r["result"]["event_id"] for r in more["results"]] == [sent[1], sent[0]]
        c.check("POST /_matrix/client/v3/search")


async def test_context_state_and_redaction(node: Node, openapi: ClientServerSpec | None) -> None:
    async with ValidatingClient(node.base_url, openapi) as c:
        alice = await c.register("alice")
        await alice.ok(
            "PUT", f"/_matrix/client/v3/profile/{alice.user_id}/displayname",
            {"displayname": "防災 太郎"},
        )  # fmt: skip
        room = await alice.create_room(name="総務課")
        before = [await alice.send(room, f"前の話 {i}") for i in range(3)]
        hit = await alice.send(room, "土砂災害警戒区域の指定")
        after = [await alice.send(room, f"後の話 {i}") for i in range(3)]

        found = await search(
            alice, "警戒区域", include_state=True,
            event_context={"before_limit": 2, "after_limit": 1, "include_profile": True},
        )  # fmt: skip
        [result] = found["results"]
        assert result["result"]["event_id"] == hit
        context = result["context"]
        assert [e["event_id"] for e in context["events_before"]] == before[::-1][:2]
        assert [e["event_id"] for e in context["events_after"]] == after[:1]
        assert context["profile_info"][alice.user_id]["displayname"] == "防災 太郎"
        assert context["start"] and context["end"]
        # The context's tokens work with /messages.
        older = await alice.ok(
            "GET", f"/_matrix/client/v3/rooms/{room}/messages",
            params={"from": context["start"], "dir": "b", "limit": "1"},
        )  # fmt: skip
        assert [e["event_id"] for e in older["chunk"]] == [before[0]]
        state_types = {e["type"] for e in found["state"][room]}
        assert {"m.room.create", "m.room.member", "m.room.name"} <= state_types

        # A redacted event is no longer found (nor its text kept in the index).
        await alice.ok("PUT", f"/_matrix/client/v3/rooms/{room}/redact/{hit}/r1", {})
        assert (await search(alice, "警戒区域"))["results"] == []
        assert (await search(alice, "土砂災害"))["count"] == 0
        c.check("POST /_matrix/client/v3/search")


async def test_many_matches_read_newest_first(
    node: Node, openapi: ClientServerSpec | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the count's cap (made small here), matches are read newest first instead of
    through the index (PostgreSQL's plan): the same results, the count at its cap."""
    monkeypatch.setattr(search_service, "COUNT_CAP", 3)
    async with ValidatingClient(node.base_url, openapi) as c:
        alice = await c.register("alice")
        room = await alice.create_room()
        sent = [await alice.send(room, f"防災行政無線 {i}") for i in range(6)]
        await alice.send(room, "別の話題")
        for order in ("recent", "rank"):
            page = await search(alice, "行政無線", order_by=order, filter={"limit": 4})
            assert page["count"] == 3
            ids = [r["result"]["event_id"] for r in page["results"]]
            page = await search(
                alice, "行政無線", page["next_batch"], order_by=order, filter={"limit": 4}
            )
            ids += [r["result"]["event_id"] for r in page["results"]]
            assert "next_batch" not in page
            assert sorted(ids) == sorted(sent)
            if order == "recent":
                assert ids == sent[::-1]
        c.check("POST /_matrix/client/v3/search")
