"""Partner accounts over HTTP on SQLite and PostgreSQL, the attacker's side first: what a
partner tries and is refused, then what it may do."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.homeserver.client import User
from tests.homeserver.conftest import two_nodes
from tests.homeserver.municipal.partners.helpers import (
    ADMIN,
    CLIENT,
    PARTNERS,
    admin_of,
    day,
    login,
    make_partner,
    partners_node,
)

EXPIRED = "ORG_MATRIX_EXPIRED_ACCOUNT"


# ---------------------------------------------------------------------- expiry


async def test_an_expired_partner_can_neither_log_in_nor_use_its_old_token(
    tmp_path: Path, db_url: str
) -> None:
    async with partners_node(tmp_path / "node", db_url) as node, node.client() as client:
        admin = await admin_of(node, client)
        pat = await client.register("pat")
        staff = await client.register("staff")
        room = await staff.create_room()
        # Its last day is today: it still works (the whole day, in Tokyo).
        await make_partner(admin, pat.user_id, day(0))
        assert (await pat.request("GET", "/_matrix/client/v3/account/whoami")).status == 200
        assert (await login(client, "pat")).status == 200
        # Its last day was yesterday: the token it holds stops working at once.
        await make_partner(admin, pat.user_id, day(-1))
        for method, path in (
            ("GET", "/_matrix/client/v3/account/whoami"),
            ("GET", "/_matrix/client/v3/sync"),
            ("POST", "/_matrix/client/v3/createRoom"),
        ):
            refused = await pat.request(method, path, {} if method == "POST" else None)
            assert (refused.status, refused.body["errcode"]) == (403, EXPIRED), path
            assert day(-1) in refused.body["error"]
        again = await login(client, "pat")
        assert (again.status, again.body["errcode"]) == (403, EXPIRED)
        # Nobody invites an expired partner.
        invite = await staff.request(
            "POST", f"/_matrix/client/v3/rooms/{room}/invite", {"user_id": pat.user_id}
        )
        assert (invite.status, invite.body["errcode"]) == (403, "M_FORBIDDEN")
        # Extended, the old token works again; ordinary accounts never were affected.
        await make_partner(admin, pat.user_id, day(30))
        assert (await pat.request("GET", "/_matrix/client/v3/account/whoami")).status == 200
        assert (await login(client, "pat")).status == 200
        assert (await staff.request("GET", "/_matrix/client/v3/account/whoami")).status == 200


# ---------------------------------------------------------------------- rooms


async def test_a_partner_joins_only_rooms_it_is_invited_to(tmp_path: Path, db_url: str) -> None:
    async with partners_node(tmp_path / "node", db_url) as node, node.client() as client:
        admin = await admin_of(node, client)
        pat = await client.register("pat")
        staff = await client.register("staff")
        other = await client.register("other")
        await make_partner(admin, pat.user_id, day(30))
        alias = f"#lobby:{node.server_name}"
        room = await staff.create_room(preset="public_chat", room_alias_name="lobby")
        for path in (
            f"/_matrix/client/v3/join/{room}",
            f"/_matrix/client/v3/join/{alias.replace('#', '%23')}",
            f"/_matrix/client/v3/rooms/{room}/join",
        ):
            refused = await pat.request("POST", path, {})
            assert (refused.status, refused.body["errcode"]) == (403, "M_FORBIDDEN"), path
        # Nor is a knock (Kairan has no /knock yet; the state API wants members, and the
        # feature refuses a partner's knock event should one be built).
        knock = await pat.request(
            "PUT", f"/_matrix/client/v3/rooms/{room}/state/m.room.member/{pat.user_id}",
            {"membership": "knock"},
        )  # fmt: skip
        assert knock.status == 403
        members = await staff.ok("GET", f"/_matrix/client/v3/rooms/{room}/joined_members")
        assert pat.user_id not in members["joined"]
        # An ordinary account joins the public room; the partner does once invited.
        await other.join(room)
        await staff.invite(room, pat.user_id)
        await pat.join(room)
        members = await staff.ok("GET", f"/_matrix/client/v3/rooms/{room}/joined_members")
        assert pat.user_id in members["joined"]


async def test_a_partner_cannot_peek_into_world_readable_rooms(tmp_path: Path, db_url: str) -> None:
    async with partners_node(tmp_path / "node", db_url) as node, node.client() as client:
        admin = await admin_of(node, client)
        pat = await client.register("pat")
        staff = await client.register("staff")
        stranger = await client.register("stranger")
        await make_partner(admin, pat.user_id, day(30))
        room = await staff.create_room(
            preset="public_chat",
            initial_state=[
                {"type": "m.room.history_visibility", "state_key": "",
                 "content": {"history_visibility": "world_readable"}},
            ],
        )  # fmt: skip
        event_id = await staff.send(room, "避難所の名簿")
        paths = [
            f"/_matrix/client/v3/rooms/{room}/messages?dir=b",
            f"/_matrix/client/v3/rooms/{room}/state",
            f"/_matrix/client/v3/rooms/{room}/state/m.room.create",
            f"/_matrix/client/v3/rooms/{room}/members",
            f"/_matrix/client/v3/rooms/{room}/event/{event_id}",
            f"/_matrix/client/v3/rooms/{room}/context/{event_id}",
        ]
        for path in paths:
            # An ordinary account that is not in the room reads it (world-readable)...
            assert (await stranger.request("GET", path)).status == 200, path
            # ...a partner does not.
            refused = await pat.request("GET", path)
            assert (refused.status, refused.body["errcode"]) == (403, "M_FORBIDDEN"), path


async def test_a_partner_starts_direct_chats_only_and_cannot_open_them(
    tmp_path: Path, db_url: str
) -> None:
    async with partners_node(tmp_path / "node", db_url) as node, node.client() as client:
        admin = await admin_of(node, client)
        pat = await client.register("pat")
        staff = await client.register("staff")
        await make_partner(admin, pat.user_id, day(30))
        create = "/_matrix/client/v3/createRoom"
        for body in (
            {},
            {"preset": "private_chat", "name": "DMAT"},
            {"is_direct": True, "preset": "public_chat"},
            {"is_direct": True, "visibility": "public"},
            {"is_direct": True, "room_alias_name": "dmat"},
            {"is_direct": True, "initial_state": [
                {"type": "m.room.join_rules", "state_key": "", "content": {"join_rule": "public"}}
            ]},
        ):  # fmt: skip
            refused = await pat.request("POST", create, body)
            assert (refused.status, refused.body["errcode"]) == (403, "M_FORBIDDEN"), body
        # A direct chat with a member of staff: allowed.
        dm = await pat.ok(
            "POST", create,
            {"is_direct": True, "preset": "trusted_private_chat", "invite": [staff.user_id]},
        )  # fmt: skip
        room = dm["room_id"]
        await staff.join(room)
        await pat.send(room, "よろしくお願いします")
        # The partner created it, yet may not open its door nor make it readable by all.
        for event_type, content in (
            ("m.room.join_rules", {"join_rule": "public"}),
            ("m.room.join_rules", {"join_rule": "knock"}),
            ("m.room.history_visibility", {"history_visibility": "world_readable"}),
        ):
            refused = await pat.request(
                "PUT", f"/_matrix/client/v3/rooms/{room}/state/{event_type}/", content
            )
            assert (refused.status, refused.body["errcode"]) == (403, "M_FORBIDDEN"), content
        topic = await pat.request(
            "PUT", f"/_matrix/client/v3/rooms/{room}/state/m.room.topic/", {"topic": "連絡"}
        )
        assert topic.status == 200
        # Staff create rooms as ever.
        assert (await staff.request("POST", create, {"preset": "public_chat"})).status == 200


# ---------------------------------------------------------------------- directory and profile


async def test_partners_are_absent_from_the_directory_and_marked_in_their_profile(
    tmp_path: Path, db_url: str
) -> None:
    async with partners_node(tmp_path / "node", db_url) as node, node.client() as client:
        admin = await admin_of(node, client)
        pat = await client.register("dmat-yamada")
        staff = await client.register("yamada")
        await make_partner(admin, pat.user_id, "2027-03-31")
        search = "/_matrix/client/v3/user_directory/search"
        for term in ("yamada", "dmat", pat.user_id):
            found = await staff.ok("POST", search, {"search_term": term})
            assert pat.user_id not in {r["user_id"] for r in found["results"]}, term
        found = await staff.ok("POST", search, {"search_term": "yamada"})
        assert staff.user_id in {r["user_id"] for r in found["results"]}
        # Absent, not blind: a partner finds the staff it works with.
        found = await pat.ok("POST", search, {"search_term": "yamada"})
        assert {r["user_id"] for r in found["results"]} == {staff.user_id}
        # Its profile says it is a partner; it cannot remove or change that.
        profile = await staff.ok("GET", f"/_matrix/client/v3/profile/{pat.user_id}")
        assert profile["jp.kairan.partner"] == {"expires": "2027-03-31"}
        assert "jp.kairan.partner" not in await pat.ok(
            "GET", f"/_matrix/client/v3/profile/{staff.user_id}"
        )
        field = f"/_matrix/client/v3/profile/{pat.user_id}/jp.kairan.partner"
        assert (await pat.ok("GET", field)) == {"jp.kairan.partner": {"expires": "2027-03-31"}}
        for body in ({"jp.kairan.partner": None}, {"jp.kairan.partner": {"expires": "2099-01-01"}}):
            refused = await pat.request("PUT", field, body)
            assert (refused.status, refused.body["errcode"]) == (403, "M_FORBIDDEN")
        profile = await pat.ok("GET", f"/_matrix/client/v3/profile/{pat.user_id}")
        assert profile["jp.kairan.partner"] == {"expires": "2027-03-31"}
        # The feature's endpoint, for any local user.
        assert await staff.ok("GET", f"{CLIENT}/{pat.user_id}") == {
            "partner": True, "expires": "2027-03-31", "expired": False,
        }  # fmt: skip
        assert await pat.ok("GET", f"{CLIENT}/{staff.user_id}") == {"partner": False}
        unauthenticated = await client.request("GET", f"{CLIENT}/{pat.user_id}")
        assert unauthenticated.status == 401
        unknown = await staff.request("GET", f"{CLIENT}/@nobody:{node.server_name}")
        assert (unknown.status, unknown.body["errcode"]) == (404, "M_NOT_FOUND")
        remote = await staff.request("GET", f"{CLIENT}/@someone:elsewhere.example")
        assert (remote.status, remote.body["errcode"]) == (400, "M_INVALID_PARAM")


# ---------------------------------------------------------------------- admin API


async def test_the_admin_api_makes_extends_lists_and_ends_partners(
    tmp_path: Path, db_url: str
) -> None:
    async with partners_node(tmp_path / "node", db_url) as node, node.client() as client:
        admin = await admin_of(node, client)
        pat = await client.register("pat")
        staff = await client.register("staff")
        # Neither a partner nor a member of staff reaches the admin API.
        for user in (pat, staff):
            for method, path, body in (
                ("PUT", f"{ADMIN}/{pat.user_id}", {"expires": "2099-12-31"}),
                ("DELETE", f"{ADMIN}/{pat.user_id}", None),
                ("GET", ADMIN, None),
                ("GET", f"{ADMIN}/{pat.user_id}", None),
            ):
                refused = await user.request(method, path, body)
                assert (refused.status, refused.body["errcode"]) == (403, "M_FORBIDDEN")
        assert (await client.request("GET", ADMIN)).status == 401
        made = await make_partner(admin, pat.user_id, "2027-03-31")
        assert made["expires"] == "2027-03-31" and made["changed_by"] == admin.user_id
        assert made["expired"] is False
        moved = await make_partner(admin, pat.user_id, "2027-06-30")
        assert moved["expires"] == "2027-06-30" and moved["added_ts"] == made["added_ts"]
        listed = await admin.ok("GET", ADMIN)
        assert [(p["user_id"], p["expires"]) for p in listed["partners"]] == [
            (pat.user_id, "2027-06-30")
        ]
        one = await admin.ok("GET", f"{ADMIN}/{pat.user_id}")
        assert one["expires"] == "2027-06-30"
        # Bad input: the right errcode, never a 500.
        for body, errcode in (
            ({}, "M_BAD_JSON"),
            ({"expires": "31/03/2027"}, "M_INVALID_PARAM"),
            ({"expires": "2027-02-30"}, "M_INVALID_PARAM"),
            ({"expires": 20270331}, "M_INVALID_PARAM"),
        ):
            bad = await admin.request("PUT", f"{ADMIN}/{pat.user_id}", body)
            assert (bad.status, bad.body["errcode"]) == (400, errcode), body
        unknown = await admin.request(
            "PUT", f"{ADMIN}/@nobody:{node.server_name}", {"expires": "2027-01-01"}
        )
        assert (unknown.status, unknown.body["errcode"]) == (404, "M_NOT_FOUND")
        remote = await admin.request(
            "PUT", f"{ADMIN}/@x:elsewhere.example", {"expires": "2027-01-01"}
        )
        assert (remote.status, remote.body["errcode"]) == (400, "M_INVALID_PARAM")
        not_partner = await admin.request("GET", f"{ADMIN}/{staff.user_id}")
        assert (not_partner.status, not_partner.body["errcode"]) == (404, "M_NOT_FOUND")
        # Ended: an ordinary account again, in the directory and free to join.
        await admin.ok("DELETE", f"{ADMIN}/{pat.user_id}")
        assert (await admin.ok("GET", ADMIN))["partners"] == []
        gone = await admin.request("DELETE", f"{ADMIN}/{pat.user_id}")
        assert gone.status == 404
        room = await staff.create_room(preset="public_chat")
        await pat.join(room)
        assert await staff.ok("GET", f"{CLIENT}/{pat.user_id}") == {"partner": False}


# ---------------------------------------------------------------------- federation


async def test_a_partner_joins_remote_rooms_only_when_invited(
    tmp_path: Path, db_url: str, db_url_b: str
) -> None:
    """The partner is on B (which runs the feature); the public room is on A."""
    async for a, b in two_nodes(tmp_path, db_url, db_url_b, features=PARTNERS):
        async with a.client() as ca, b.client() as cb:
            admin = await admin_of(b, cb)
            pat = await cb.register("pat")
            await make_partner(admin, pat.user_id, day(30))
            alice = await ca.register("alice")
            room = await alice.create_room(preset="public_chat", room_alias_name="bousai")
            for target in (room, f"%23bousai:{a.server_name}"):
                refused = await pat.request(
                    "POST", f"/_matrix/client/v3/join/{target}", {},
                    params={"server_name": a.server_name},
                )  # fmt: skip
                assert (refused.status, refused.body["errcode"]) == (403, "M_FORBIDDEN"), target
            members = await alice.ok("GET", f"/_matrix/client/v3/rooms/{room}/joined_members")
            assert pat.user_id not in members["joined"]
            # Invited by A's user, it joins over federation.
            await alice.invite(room, pat.user_id)
            for _ in range(200):
                if await b.services.rooms.room(room) is not None or await _invited(pat, room):
                    break
                await asyncio.sleep(0.05)
            await pat.ok(
                "POST", f"/_matrix/client/v3/join/{room}", {},
                params={"server_name": a.server_name},
            )  # fmt: skip
            members = await alice.ok("GET", f"/_matrix/client/v3/rooms/{room}/joined_members")
            assert pat.user_id in members["joined"]


async def _invited(user: User, room: str) -> bool:
    synced = await user.sync()
    return room in synced.get("rooms", {}).get("invite", {})
