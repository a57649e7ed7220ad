"""``/publicRooms?server=...``: another server's room directory, asked over federation
(``POST /_matrix/federation/v1/publicRooms``) as Synapse does, so that staff find the rooms
and user groups of another member's node from their own; the attacker's side: a stranger
asking through us, a bad server name, a server that answers garbage or nothing."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from tests.homeserver.conftest import free_port, two_nodes
from tests.homeserver.fakeserver import FakeServer

V3 = "/_matrix/client/v3"


async def test_another_servers_rooms_through_our_node(
    tmp_path: Path, db_url: str, db_url_b: str
) -> None:
    async for a, b in two_nodes(tmp_path, db_url, db_url_b):
        async with a.client() as ca, b.client() as cb:
            bob = await cb.register("bob")
            listed = await bob.create_room(
                preset="public_chat", visibility="public", name="防災 根室4町", topic="共有"
            )
            await bob.create_room(preset="public_chat", name="非公開の部屋")
            alice = await ca.register("alice")

            found = await alice.ok("GET", f"{V3}/publicRooms", params={"server": b.server_name})
            assert [r["room_id"] for r in found["chunk"]] == [listed]
            assert found["chunk"][0]["name"] == "防災 根室4町"
            assert found["chunk"][0]["num_joined_members"] == 1
            # A search term travels with POST.
            searched = await alice.ok(
                "POST", f"{V3}/publicRooms", {"filter": {"generic_search_term": "防災"}},
                params={"server": b.server_name},
            )  # fmt: skip
            assert [r["room_id"] for r in searched["chunk"]] == [listed]
            missed = await alice.ok(
                "POST", f"{V3}/publicRooms", {"filter": {"generic_search_term": "選挙"}},
                params={"server": b.server_name},
            )  # fmt: skip
            assert missed["chunk"] == []
            # Our own name is our own list (nothing published on A).
            own = await alice.ok("GET", f"{V3}/publicRooms", params={"server": a.server_name})
            assert own["chunk"] == []
            # Found, joined from A through B (as Element does: the directory's server).
            await alice.ok("POST", f"{V3}/join/{listed}", {}, params={"server_name": b.server_name})

            # Asking another server is for users: no token, 401; ours stays public.
            anonymous = await ca.request(
                "GET", f"{V3}/publicRooms", params={"server": b.server_name}
            )
            assert (anonymous.status, anonymous.body["errcode"]) == (401, "M_MISSING_TOKEN")
            assert (await ca.request("GET", f"{V3}/publicRooms")).status == 200
            bad = await alice.request("GET", f"{V3}/publicRooms", params={"server": "a b/../c"})
            assert (bad.status, bad.body["errcode"]) == (400, "M_INVALID_PARAM")
            down = await alice.request(
                "GET", f"{V3}/publicRooms", params={"server": f"127.0.0.1:{free_port()}"}
            )
            assert (down.status, down.body["errcode"]) == (502, "M_UNKNOWN")


async def test_a_servers_garbage_never_reaches_the_client(
    tmp_path: Path, db_url: str, db_url_b: str
) -> None:
    answers = {
        "chunk": [
            {"room_id": "!ok:evil", "num_joined_members": 3, "world_readable": False,
             "guest_can_join": False, "name": "ok", "script": "<script>", "join_rule": 5},
            {"room_id": "no bang", "num_joined_members": 1, "world_readable": False,
             "guest_can_join": False},
            {"room_id": "!neg:evil", "num_joined_members": -1, "world_readable": False,
             "guest_can_join": False},
            "not an object",
        ],
        "next_batch": 42,
        "total_room_count_estimate": True,
    }  # fmt: skip

    async def public_rooms(request: web.Request) -> web.Response:
        return web.json_response(answers)

    evil = FakeServer(tmp_path / "evil")
    evil.handlers["/_matrix/federation/v1/publicRooms"] = public_rooms
    await evil.start()
    try:
        async for a, _b in two_nodes(tmp_path, db_url, db_url_b):
            async with a.client() as ca:
                alice = await ca.register("alice")
                found = await alice.ok(
                    "GET", f"{V3}/publicRooms", params={"server": evil.server_name}
                )
                assert found == {
                    "chunk": [
                        {"room_id": "!ok:evil", "num_joined_members": 3,
                         "world_readable": False, "guest_can_join": False, "name": "ok"},
                    ]
                }  # fmt: skip
    finally:
        await evil.close()
