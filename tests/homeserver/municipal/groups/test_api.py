"""Consortium user groups over HTTP on real nodes (SQLite and PostgreSQL): made through the
admin API, found in the directory and the space's hierarchy, joined by a member node's
staff from their own node; non-members, outsiders and non-admins kept out."""

from __future__ import annotations

from pathlib import Path

from tests.homeserver.client import User
from tests.homeserver.federation.test_federation import eventually
from tests.homeserver.municipal.consortium.nodes import running
from tests.homeserver.municipal.groups.nodes import (
    GROUPS,
    admin,
    features,
    hierarchy,
    hold_consortium,
    join,
    public_rooms,
    q,
    state,
)

RESTRICTED = "restricted"


async def test_member_staff_find_and_join_a_group_from_their_own_node(
    tmp_path: Path, db_url: str, db_url_b: str, db_url_c: str
) -> None:
    closed = {"features": features(closed=True)}
    async with running(
        tmp_path, ("a", db_url, closed), ("b", db_url_b, closed), ("c", db_url_c, {})
    ) as (a, b, c):
        await hold_consortium([a, b], [a, b])
        async with a.client() as ca, b.client() as cb, c.client() as cc:
            alice = await admin(a, await ca.register("alice"))
            group = await alice.ok(
                "POST", GROUPS,
                {"consortium": "kanto", "name": "防災連絡会", "rooms": ["災害対応", "行政DX"]},
            )  # fmt: skip
            space = group["space_id"]
            assert (group["consortium"], group["name"], group["creator"]) == (
                "kanto", "防災連絡会", alice.user_id,
            )  # fmt: skip
            rooms = {r["name"]: r["room_id"] for r in group["rooms"]}
            assert list(rooms) == ["災害対応", "行政DX"]

            # The space is in the directory (a space, with a topic from the consortium);
            # the themed rooms are found through it, not the directory.
            listed = await public_rooms(alice)
            assert listed[space]["room_type"] == "m.space"
            assert listed[space]["name"] == "防災連絡会"
            assert listed[space]["join_rule"] == "public"
            assert "関東LGWAN連携" in listed[space]["topic"]
            assert not set(rooms.values()) & set(listed)
            # Bound to the consortium, space and rooms alike.
            for room_id in (space, *rooms.values()):
                assert await state(alice, room_id, "jp.kairan.consortium") == {"id": "kanto"}
            for room_id in rooms.values():
                assert await state(alice, room_id, "m.room.join_rules") == {
                    "join_rule": RESTRICTED,
                    "allow": [{"type": "m.room_membership", "room_id": space}],
                }
                parent = await state(alice, room_id, "m.space.parent", space)
                assert parent == {"via": [a.server_name], "canonical": True}
                child = await state(alice, space, "m.space.child", room_id)
                assert child == {"via": [a.server_name], "suggested": True}
            tree = await hierarchy(alice, space)
            assert set(tree) == {space, *rooms.values()}
            assert all(tree[r]["join_rule"] == RESTRICTED for r in rooms.values())

            # Staff of member B: the space from B (public), then a themed room through
            # the restricted rule (authorised by A's creator), from their own node.
            bob, dave = await cb.register("bob"), await cb.register("dave")
            status, body = await join(dave, rooms["災害対応"], a.server_name)
            assert (status, body["errcode"]) == (403, "M_FORBIDDEN"), body
            status, body = await join(bob, space, a.server_name)
            assert status == 200, body
            status, body = await join(bob, rooms["災害対応"], a.server_name)
            assert status == 200, body
            member = await state(alice, rooms["災害対応"], "m.room.member", bob.user_id)
            assert member["membership"] == "join"
            assert member["join_authorised_via_users_server"] == alice.user_id
            # B's own view of the space (it is in it now) lists the themed rooms.
            await eventually(lambda: _has_children(bob, space, set(rooms.values())))
            # Not in the space: still refused.
            status, body = await join(dave, rooms["行政DX"], a.server_name)
            assert (status, body["errcode"]) == (403, "M_FORBIDDEN"), body

            # A room added later: its child event reaches B, B's staff in the space join it.
            added = await alice.ok("POST", f"{GROUPS}/{q(space)}/rooms", {"name": "選挙事務"})
            assert added["name"] == "選挙事務"
            status, body = await join(bob, added["room_id"], a.server_name)
            assert status == 200, body

            # An outsider (C is no member; A and B federate only with members): the public
            # space is out of its reach, and nothing of it lands on A.
            carol = await cc.register("carol")
            for room_id in (space, rooms["災害対応"]):
                status, body = await join(carol, room_id, a.server_name)
                assert (status, body["errcode"]) == (403, "M_FORBIDDEN"), body
                assert "not a member of this node's consortia" in body["error"]
            members = await alice.ok("GET", f"/_matrix/client/v3/rooms/{q(space)}/joined_members")
            assert set(members["joined"]) == {alice.user_id, bob.user_id}

            listing = await alice.ok("GET", GROUPS)
            assert [g["space_id"] for g in listing["groups"]] == [space]
            assert [r["name"] for r in listing["groups"][0]["rooms"]] == [
                "災害対応", "行政DX", "選挙事務",
            ]  # fmt: skip
            assert await alice.ok("GET", f"{GROUPS}/{q(space)}") == listing["groups"][0]


async def _has_children(user: User, space: str, rooms: set[str]) -> bool:
    tree = await hierarchy(user, space)
    return rooms <= set(tree)


async def test_admin_api_refuses_bad_requests_and_non_admins(tmp_path: Path, db_url: str) -> None:
    async with running(tmp_path, ("a", db_url, {"features": features(closed=False)})) as (a,):
        await hold_consortium([a], [a])
        async with a.client() as ca:
            alice = await admin(a, await ca.register("alice"))
            eve = await ca.register("eve")
            good = {"consortium": "kanto", "name": "防災連絡会"}
            # Not a server admin: 403, for making and for listing.
            for method, body in (("POST", good), ("GET", None)):
                response = await eve.request(method, GROUPS, body)
                assert (response.status, response.body["errcode"]) == (403, "M_FORBIDDEN")
            # A consortium this node does not hold.
            response = await alice.request("POST", GROUPS, {**good, "consortium": "nope"})
            assert (response.status, response.body["errcode"]) == (404, "M_NOT_FOUND")
            assert "nope" in response.body["error"]
            bad = [
                ({**good, "name": ""}, 400, "M_INVALID_PARAM"),
                ({**good, "name": "   "}, 400, "M_INVALID_PARAM"),
                ({**good, "name": "x" * 101}, 400, "M_INVALID_PARAM"),
                ({**good, "name": "a\u0007b"}, 400, "M_INVALID_PARAM"),
                ({**good, "name": 5}, 400, "M_INVALID_PARAM"),
                ({"consortium": "kanto"}, 400, "M_INVALID_PARAM"),
                ({"name": "防災"}, 400, "M_BAD_JSON"),
                ({**good, "rooms": [""]}, 400, "M_INVALID_PARAM"),
                ({**good, "rooms": ["災害対応", "災害対応"]}, 400, "M_INVALID_PARAM"),
                ({**good, "rooms": "災害対応"}, 400, "M_INVALID_PARAM"),
                ({**good, "rooms": ["r"] * 51}, 400, "M_INVALID_PARAM"),
                ({**good, "topic": "t" * 501}, 400, "M_INVALID_PARAM"),
                ({**good, "creator": "@nobody:elsewhere.example"}, 400, "M_INVALID_PARAM"),
                ({**good, "creator": f"@ghost:{a.server_name}"}, 400, "M_INVALID_PARAM"),
            ]
            for body, status, errcode in bad:
                response = await alice.request("POST", GROUPS, body)
                assert (response.status, response.body["errcode"]) == (status, errcode), body
            # Nothing was made by any of them: no group, no room.
            assert await alice.ok("GET", GROUPS) == {"groups": []}
            assert await a.services.admin.list_rooms() == []
            # Another local user may own a group an admin makes.
            made = await alice.ok("POST", GROUPS, {**good, "creator": eve.user_id})
            assert made["creator"] == eve.user_id
            create = await a.services.rooms.state_event(made["space_id"], "m.room.create", "")
            assert create is not None and create.pdu["sender"] == eve.user_id
            members = await eve.ok("GET", f"/_matrix/client/v3/rooms/{q(made['space_id'])}/members")
            assert {e["state_key"] for e in members["chunk"]} == {eve.user_id}
            # Adding rooms: to an unknown group 404, bad names 400, a taken name 400.
            response = await alice.request("POST", f"{GROUPS}/{q('!nope:x')}/rooms", {"name": "r"})
            assert (response.status, response.body["errcode"]) == (404, "M_NOT_FOUND")
            path = f"{GROUPS}/{q(made['space_id'])}/rooms"
            for name in ("", "x" * 101, None):
                response = await alice.request("POST", path, {"name": name})
                assert (response.status, response.body["errcode"]) == (400, "M_INVALID_PARAM")
            await alice.ok("POST", path, {"name": "選挙事務"})
            response = await alice.request("POST", path, {"name": "選挙事務"})
            assert (response.status, response.body["errcode"]) == (400, "M_INVALID_PARAM")
            response = await eve.request("POST", path, {"name": "行政DX"})
            assert (response.status, response.body["errcode"]) == (403, "M_FORBIDDEN")
            response = await alice.request("GET", f"{GROUPS}/{q('!nope:x')}")
            assert (response.status, response.body["errcode"]) == (404, "M_NOT_FOUND")
