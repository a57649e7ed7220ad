"""Federated directory search with real nodes on both databases: results merged with their
organisations, a peer that is down named, /user_directory/search finding peers' staff;
and the attacker's side (a peer answering garbage, too much or too slowly, a server asking
without a signature or with a bad query)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from tests.homeserver.conftest import free_port
from tests.homeserver.fakeserver import FakeServer
from tests.homeserver.municipal.directory.helpers import (
    NEMURO,
    admin_of,
    directory_node,
    import_rows,
    names,
    search,
)

FEDERATION = "/_matrix/federation/unstable/jp.kairan/directory/search"
#: 別海町 (016918)'s town office: the peer's staff.
BETSUKAI = [
    "016918,別海町役場,べつかいちょうやくば,総務部/総務課,田中 一郎,たなか いちろう,課長,201,tanaka",
    "016918,別海町役場,,保健福祉課,山本 さくら,やまもと さくら,保健師,310,",
]


async def test_search_across_two_nodes_with_one_peer_down(
    tmp_path: Path, db_url: str, db_url_b: str
) -> None:
    down = f"127.0.0.1:{free_port()}"  # nothing listens there
    async with directory_node(tmp_path / "b", db_url_b, tls=True) as b, directory_node(
        tmp_path / "a", db_url, tls=True, search_peers=[b.server_name, down],
        search_timeout_seconds=5,
    ) as a, a.client() as ca, b.client() as cb:  # fmt: skip
        await import_rows(await admin_of(a, ca), NEMURO)
        await import_rows(await admin_of(b, cb), BETSUKAI)
        await cb.register("tanaka")
        alice = await ca.register("alice")

        found = await search(alice, "課長")
        assert names(found) == ["田中 一郎", "田中 健", "山田 太郎"]  # by reading
        by_name = {r["name"]: r for r in found["results"]}
        assert by_name["田中 一郎"]["org"] == {
            "code": "016918", "name": "別海町役場", "reading": "べつかいちょうやくば",
            "server": b.server_name,
        }  # fmt: skip
        assert by_name["田中 一郎"]["user_id"] == f"@tanaka:{b.server_name}"
        assert by_name["山田 太郎"]["org"]["server"] == a.server_name
        assert found["partial"] is True and found["unreachable"] == [down]
        # Readings and organisations work across servers too.
        assert names(await search(alice, "ヤマモト"))[0] == "山本 さくら"
        assert names(await search(alice, "別海"))[:1] == ["田中 一郎"]

        # Element's /user_directory/search finds the peer's staff with an account.
        directory = await alice.ok(
            "POST", "/_matrix/client/v3/user_directory/search", {"search_term": "たなか"}
        )
        found_ids = [r["user_id"] for r in directory["results"]]
        assert f"@tanaka:{b.server_name}" in found_ids
        entry = next(r for r in directory["results"] if r["user_id"].startswith("@tanaka"))
        assert entry["display_name"] == "田中 一郎"
        # Staff without an account (山本) are not users: not in the user directory.
        assert not (
            await alice.ok(
                "POST", "/_matrix/client/v3/user_directory/search", {"search_term": "山本"}
            )
        )["results"]

        # B asked directly answers with its own staff only: it never asks its peers.
        bob = await cb.register("bob")
        local_only = await search(bob, "課長")
        assert names(local_only) == ["田中 一郎"] and "partial" not in local_only


async def test_a_hostile_peer_and_hostile_callers(tmp_path: Path, db_url: str) -> None:
    peers = {name: FakeServer(tmp_path / name) for name in ("garbage", "huge", "slow", "liar")}
    for fake in peers.values():
        await fake.start()

    async def garbage(request: web.Request) -> web.StreamResponse:
        return web.Response(text="<html>not json</html>", content_type="text/html")

    async def huge(request: web.Request) -> web.StreamResponse:
        entry = {"name": "x" * 100, "org": {"code": "012238", "name": "根室市役所"}}
        return web.json_response({"results": [entry] * 5000})  # about 600 KB

    async def slow(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(5)
        return web.json_response({"results": []})

    liar = peers["liar"]

    async def lies(request: web.Request) -> web.StreamResponse:
        good = {
            "name": "正直 者",
            "reading": "しょうじきもの",
            "org": {"code": "012238", "name": "根室市役所", "server": "evil.example"},
        }
        return web.json_response({"results": [
            good,
            {**good, "name": "偽 者", "user_id": "@mayor:other.example"},  # not its user
            {**good, "name": "番号 違い", "org": {"code": "012237", "name": "x"}},
            {**good, "name": 5},
            "a string",
            {**good, "name": "長 すぎ", "title": "x" * 10_000},
            {**good, "name": "本物", "user_id": liar.user("honest")},
        ]})  # fmt: skip

    peers["garbage"].handlers[FEDERATION] = garbage
    peers["huge"].handlers[FEDERATION] = huge
    peers["slow"].handlers[FEDERATION] = slow
    liar.handlers[FEDERATION] = lies
    try:
        async with directory_node(
            tmp_path / "a", db_url, tls=True,
            search_peers=[p.server_name for p in peers.values()], search_timeout_seconds=1,
        ) as a, a.client() as ca:  # fmt: skip
            await import_rows(await admin_of(a, ca), NEMURO)
            alice = await ca.register("alice")
            started = asyncio.get_running_loop().time()
            found = await search(alice, "根室")
            took = asyncio.get_running_loop().time() - started
            assert took < 4, took  # the slow peer did not hold the answer up
            assert found["partial"] is True
            assert sorted(found["unreachable"]) == sorted(
                peers[n].server_name for n in ("garbage", "huge", "slow")
            )
            from_liar = [r for r in found["results"] if r["org"]["server"] == liar.server_name]
            assert sorted(r["name"] for r in from_liar) == ["本物", "正直 者"]
            assert all(r["org"]["server"] == liar.server_name for r in from_liar)
            assert {r.get("user_id") for r in from_liar} == {None, liar.user("honest")}
            assert len(found["results"]) == 7  # 5 local + 2 believable

            # Callers of the federation endpoint: a signature is needed, and the query is
            # checked as a client's is.
            async with aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=False)
            ) as session, session.post(
                a.base_url + FEDERATION, json={"search_term": "根室"}
            ) as unsigned:  # fmt: skip
                assert unsigned.status == 401
            fake = peers["garbage"]
            answer = await fake.request(a, "POST", FEDERATION, {"search_term": "山田"})
            assert answer.status == 200
            assert [r["name"] for r in answer.body["results"]] == ["山田 太郎"]
            assert answer.body["limited"] is False
            for body, errcode in (
                ({"search_term": "あ" * 500}, "M_INVALID_PARAM"),
                ({"search_term": ["x"]}, "M_MISSING_PARAM"),
                ({"search_term": "x", "limit": "all"}, "M_BAD_JSON"),
            ):
                bad: Any = await fake.request(a, "POST", FEDERATION, body)
                assert (bad.status, bad.body["errcode"]) == (400, errcode), body
            capped = await fake.request(
                a, "POST", FEDERATION, {"search_term": "根", "limit": 10**9}
            )
            assert capped.status == 200 and len(capped.body["results"]) == 5
    finally:
        for fake in peers.values():
            await fake.close()
