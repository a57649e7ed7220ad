"""Reporting events, rooms and users over real HTTP, the attacker's side first, and the
admins' list of the reports (``/_kairan/admin/v1/*_reports``); client responses validated
against the spec's OpenAPI when the run has it."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from homeserver.storage import reports as store
from tests.homeserver.admin.test_admin import login
from tests.homeserver.client import Response, User
from tests.homeserver.conftest import Node
from tests.homeserver.openapi import ValidatingClient
from tests.homeserver.rooms.room_setup import register, users_with_room

V3 = "/_matrix/client/v3"
ADMIN = "/_kairan/admin/v1"
EVENT = "POST /_matrix/client/v3/rooms/{roomId}/report/{eventId}"
ROOM = "POST /_matrix/client/v3/rooms/{roomId}/report"
USER = "POST /_matrix/client/v3/users/{userId}/report"


def q(value: str) -> str:
    return quote(value, safe="")


async def report_event(user: User, room_id: str, event_id: str, body: object) -> Response:
    return await user.request("POST", f"{V3}/rooms/{q(room_id)}/report/{q(event_id)}", body)


async def report_room(user: User, room_id: str, body: object) -> Response:
    return await user.request("POST", f"{V3}/rooms/{q(room_id)}/report", body)


async def report_user(user: User, user_id: str, body: object) -> Response:
    return await user.request("POST", f"{V3}/users/{q(user_id)}/report", body)


@pytest.fixture
def client(vclient: ValidatingClient) -> ValidatingClient:
    return vclient  # tests/homeserver/conftest.py: every response checked


async def test_attacker_side(client: ValidatingClient, node: Node) -> None:
    (alice, bob, eve, mallory), room = await users_with_room(
        client, "alice", "bob", "eve", "mallory", preset="public_chat"
    )
    await alice.ok("PUT", f"{V3}/rooms/{q(room)}/state/m.room.history_visibility",
                   {"history_visibility": "joined"})  # fmt: skip
    secret = await alice.send(room, "before anyone else")
    # eve is not in the room: the event is "not found", as an unknown one is.
    for event_id in (secret, "$unknown"):
        r = await report_event(eve, room, event_id, {"reason": "spam"})
        assert (r.status, r.body["errcode"]) == (404, "M_NOT_FOUND"), r
    r = await report_event(eve, "!nowhere:example.org", secret, {"reason": "spam"})
    assert (r.status, r.body["errcode"]) == (404, "M_NOT_FOUND"), r
    # bob joined after it: he may not see it, so may not report it.
    await bob.join(room)
    r = await report_event(bob, room, secret, {})
    assert (r.status, r.body["errcode"]) == (404, "M_NOT_FOUND"), r
    # Bad bodies.
    for body in ({"reason": "x" * 1001}, {"reason": 5}, {"score": "-100"}, {"score": True}):
        r = await report_event(alice, room, secret, body)
        assert (r.status, r.body["errcode"]) == (400, "M_BAD_JSON"), (body, r)
    r = await report_room(mallory, room, {})
    assert (r.status, r.body["errcode"]) == (400, "M_MISSING_PARAM"), r
    r = await report_room(mallory, room, {"reason": "x" * 1001})
    assert (r.status, r.body["errcode"]) == (400, "M_BAD_JSON"), r
    r = await report_user(mallory, alice.user_id, {"reason": None})
    assert (r.status, r.body["errcode"]) == (400, "M_BAD_JSON"), r
    r = await report_room(mallory, "!nowhere:example.org", {"reason": "?"})
    assert (r.status, r.body["errcode"]) == (404, "M_NOT_FOUND"), r
    # Users of other servers and unknown users are taken but not stored (nothing leaks).
    for target in (f"@ghost:{node.server_name}", "@someone:example.org"):
        r = await report_user(mallory, target, {"reason": "?"})
        assert (r.status, r.body) == (200, {}), r
    # Rate-limited per user (bursts of five, then one a second).
    statuses = []
    for _ in range(10):
        r = await report_user(mallory, alice.user_id, {"reason": "again"})
        statuses.append(r.status)
        if r.status != 200:
            break
    assert (r.status, r.body["errcode"]) == (429, "M_LIMIT_EXCEEDED"), (statuses, r)
    assert isinstance(r.body["retry_after_ms"], int)
    r = await report_user(bob, alice.user_id, {"reason": "bob is not limited"})
    assert r.status == 200, r
    r = await client.request("POST", f"{V3}/rooms/{q(room)}/report", {"reason": "x"})
    assert r.status == 401, r
    # None of it reached the admins but bob's report and mallory's before the limit.
    async with node.services.db.read() as conn:
        listed = [await store.list_reports(conn, k, start=0, limit=10) for k in store.KINDS]
    assert [total for _, total in listed] == [0, 0, len(statuses)]
    client.check(EVENT, ROOM, USER)


async def test_reports_reach_the_admins(client: ValidatingClient, node: Node) -> None:
    alice, bob = await register(client, "alice", "bob")
    await node.services.admin.add_user("root", "root password", admin=True)
    root = await login(client, "root", "root password")
    room = await alice.create_room(preset="public_chat", name="防災", room_alias_name="bousai")
    await bob.join(room)
    spam = await alice.send(room, "spam")
    assert (await report_event(bob, room, spam, {"reason": "迷惑", "score": -100})).status == 200
    assert (await report_event(bob, room, spam, {})).status == 200
    assert (await report_room(bob, room, {"reason": ""})).status == 200
    assert (await report_user(bob, alice.user_id, {"reason": "荒らし"})).status == 200
    client.check(EVENT, ROOM, USER)

    # Only admins see them.
    r = await bob.request("GET", f"{ADMIN}/event_reports")
    assert (r.status, r.body["errcode"]) == (403, "M_FORBIDDEN"), r
    events = await root.ok("GET", f"{ADMIN}/event_reports")
    assert events["total"] == 2 and "next_token" not in events
    newest, oldest = events["event_reports"]
    assert oldest == {
        "id": oldest["id"], "received_ts": oldest["received_ts"], "user_id": bob.user_id,
        "reason": "迷惑", "room_id": room, "name": "防災",
        "canonical_alias": f"#bousai:{node.server_name}", "event_id": spam, "score": -100,
        "sender": alice.user_id,
    }  # fmt: skip
    assert newest["reason"] is None and newest["id"] > oldest["id"]
    page = await root.ok("GET", f"{ADMIN}/event_reports", params={"limit": "1", "dir": "f"})
    assert [e["id"] for e in page["event_reports"]] == [oldest["id"]] and page["next_token"] == 1
    filtered = await root.ok("GET", f"{ADMIN}/event_reports", params={"user_id": "alice"})
    assert filtered["total"] == 0
    detail = await root.ok("GET", f"{ADMIN}/event_reports/{oldest['id']}")
    assert detail["event_json"]["type"] == "m.room.message"
    assert detail["event_json"]["content"]["body"] == "spam"
    rooms = await root.ok("GET", f"{ADMIN}/room_reports")
    assert rooms["room_reports"][0]["room_id"] == room and rooms["room_reports"][0]["reason"] == ""
    users = await root.ok("GET", f"{ADMIN}/user_reports")
    assert users["user_reports"][0]["target_user_id"] == alice.user_id
    # Deleting one; unknown and malformed IDs.
    await root.ok("DELETE", f"{ADMIN}/event_reports/{oldest['id']}")
    for method, path, status in (
        ("GET", f"{ADMIN}/event_reports/{oldest['id']}", 404),
        ("DELETE", f"{ADMIN}/event_reports/{oldest['id']}", 404),
        ("GET", f"{ADMIN}/user_reports/{oldest['id']}", 404),  # an event report's ID
        ("GET", f"{ADMIN}/event_reports/x", 400),
        ("GET", f"{ADMIN}/other_reports", 404),
    ):
        r = await root.request(method, path)
        assert r.status == status, (path, r)
    assert (await root.ok("GET", f"{ADMIN}/event_reports"))["total"] == 1
