"""What Kairan does not offer, answered as the spec says; the deprecated /events/{eventId}."""

from __future__ import annotations

import pytest

from tests.homeserver.openapi import ValidatingClient

V3 = "/_matrix/client/v3"


@pytest.fixture
def c(vclient: ValidatingClient) -> ValidatingClient:
    return vclient  # tests/homeserver/conftest.py: every response checked


async def test_event_by_id_only_for_who_may_see_it(c: ValidatingClient) -> None:
    alice = await c.register("alice")
    eve = await c.register("eve")
    room = (await c.ok("POST", V3 + "/createRoom", {}, token=alice.token))["room_id"]
    sent = await c.ok("PUT", f"{V3}/rooms/{room}/send/m.room.message/1",
                      {"msgtype": "m.text", "body": "secret"}, token=alice.token)  # fmt: skip
    event = await c.ok("GET", f"{V3}/events/{sent['event_id']}", token=alice.token)
    assert event["content"]["body"] == "secret" and event["room_id"] == room
    for token in (eve.token,):
        r = await c.request("GET", f"{V3}/events/{sent['event_id']}", token=token)
        assert r.status == 404 and r.body["errcode"] == "M_NOT_FOUND"
        assert "secret" not in str(r.body)
    r = await c.request("GET", f"{V3}/events/$nope", token=alice.token)
    assert r.status == 404 and r.body["errcode"] == "M_NOT_FOUND"
    r = await c.request("GET", f"{V3}/events/{sent['event_id']}")
    assert r.status == 401


async def test_what_is_not_offered(c: ValidatingClient) -> None:
    alice = await c.register("alice")
    r = await c.request("GET", "/_matrix/client/v1/auth_metadata")
    assert r.status == 404 and r.body["errcode"] == "M_UNRECOGNIZED"  # no OAuth 2.0 API
    r = await c.request("POST", "/_matrix/client/v1/appservice/bridge/ping", {},
                        token=alice.token)  # fmt: skip
    assert r.status == 403 and r.body["errcode"] == "M_FORBIDDEN"
    room = (await c.ok("POST", V3 + "/createRoom", {}, token=alice.token))["room_id"]
    r = await c.request("PUT", f"{V3}/directory/list/appservice/net/{room}",
                        {"visibility": "public"}, token=alice.token)  # fmt: skip
    assert r.status == 403 and r.body["errcode"] == "M_FORBIDDEN"
    r = await c.request("GET", "/.well-known/matrix/policy_server")
    assert r.status == 404 and r.body["errcode"] == "M_NOT_FOUND"


async def test_room_initial_sync(c: ValidatingClient) -> None:
    alice = await c.register("alice")
    eve = await c.register("eve")
    room = (await c.ok("POST", V3 + "/createRoom", {"name": "R"}, token=alice.token))["room_id"]
    for i in range(3):
        await c.ok("PUT", f"{V3}/rooms/{room}/send/m.room.message/m{i}",
                   {"msgtype": "m.text", "body": f"hello {i}"}, token=alice.token)  # fmt: skip
    snap = await c.ok("GET", f"{V3}/rooms/{room}/initialSync", token=alice.token)
    assert snap["room_id"] == room and snap["membership"] == "join"
    assert snap["visibility"] == "private"
    bodies = [e["content"].get("body") for e in snap["messages"]["chunk"]]
    assert [b for b in bodies if b][-3:] == ["hello 0", "hello 1", "hello 2"]  # oldest first
    assert {e["type"] for e in snap["state"]} >= {"m.room.create", "m.room.name"}
    # The earlier messages are one /messages away from the start token.
    older = await c.ok("GET", f"{V3}/rooms/{room}/messages", token=alice.token,
                       params={"from": snap["messages"]["start"], "dir": "b"})  # fmt: skip
    assert "hello 2" not in str(older["chunk"])
    r = await c.request("GET", f"{V3}/rooms/{room}/initialSync", token=eve.token)
    assert r.status == 403 and "hello" not in str(r.body)
    # A short room: the page holds all, and paginating from its start finds nothing more.
    small = (await c.ok("POST", V3 + "/createRoom", {}, token=eve.token))["room_id"]
    snap = await c.ok("GET", f"{V3}/rooms/{small}/initialSync", token=eve.token)
    assert 0 < len(snap["messages"]["chunk"]) < 10
    older = await c.ok("GET", f"{V3}/rooms/{small}/messages", token=eve.token,
                       params={"from": snap["messages"]["start"], "dir": "b"})  # fmt: skip
    assert older["chunk"] == []
    r = await c.request("GET", f"{V3}/rooms/!nope:example.org/initialSync", token=alice.token)
    assert r.status in (403, 404)


async def test_initial_sync_and_events(c: ValidatingClient) -> None:
    alice = await c.register("alice")
    eve = await c.register("eve")
    room = (await c.ok("POST", V3 + "/createRoom", {}, token=alice.token))["room_id"]
    snap = await c.ok("GET", V3 + "/initialSync", token=alice.token, params={"limit": "3"})
    assert [r["room_id"] for r in snap["rooms"]] == [room]
    assert snap["rooms"][0]["membership"] == "join"
    assert len(snap["rooms"][0]["messages"]["chunk"]) == 3
    assert (await c.ok("GET", V3 + "/initialSync", token=eve.token))["rooms"] == []
    start = snap["end"]
    await c.ok("PUT", f"{V3}/rooms/{room}/send/m.room.message/e1",
               {"msgtype": "m.text", "body": "news"}, token=alice.token)  # fmt: skip
    got = await c.ok("GET", V3 + "/events", token=alice.token,
                     params={"from": start, "timeout": "0"})  # fmt: skip
    assert [(e["room_id"], e["content"].get("body")) for e in got["chunk"]] == [(room, "news")]
    assert got["start"] == start and got["end"] != start
    again = await c.ok("GET", V3 + "/events", token=alice.token,
                       params={"from": got["end"], "timeout": "0"})  # fmt: skip
    assert again["chunk"] == []
    # Someone else's room: nothing, with or without room_id.
    for params in ({"from": start, "timeout": "0"},
                   {"from": start, "timeout": "0", "room_id": room}):  # fmt: skip
        seen = await c.ok("GET", V3 + "/events", token=eve.token, params=params)
        assert seen["chunk"] == [] and "news" not in str(seen)
    r = await c.request("GET", V3 + "/events", token=alice.token, params={"from": "garbage"})
    assert r.status == 400
    r = await c.request("GET", V3 + "/events")
    assert r.status == 401


async def test_mutual_rooms(c: ValidatingClient) -> None:
    alice = await c.register("alice")
    bob = await c.register("bob")
    eve = await c.register("eve")
    path = "/_matrix/client/v1/mutual_rooms"
    shared = (await c.ok("POST", V3 + "/createRoom", {"preset": "public_chat"},
                         token=alice.token))["room_id"]  # fmt: skip
    await c.ok("POST", f"{V3}/join/{shared}", {}, token=bob.token)
    await c.ok("POST", V3 + "/createRoom", {}, token=alice.token)  # alice's alone
    got = await c.ok("GET", path, token=alice.token, params={"user_id": bob.user_id})
    assert got == {"joined": [shared], "count": 1}
    # Eve learns nothing of rooms she is not in.
    got = await c.ok("GET", path, token=eve.token, params={"user_id": alice.user_id})
    assert got == {"joined": [], "count": 0}
    got = await c.ok("GET", path, token=alice.token, params={"user_id": "@ghost:example.org"})
    assert got == {"joined": [], "count": 0}
    for params in ({}, {"user_id": "nope"}, {"user_id": alice.user_id},
                   {"user_id": bob.user_id, "from": "x"}, {"user_id": bob.user_id, "from": "9"}):  # fmt: skip
        r = await c.request("GET", path, token=alice.token, params=params)
        assert r.status == 400, (params, r)
