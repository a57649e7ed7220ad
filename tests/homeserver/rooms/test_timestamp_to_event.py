"""``GET /_matrix/client/v1/rooms/{roomId}/timestamp_to_event`` over real HTTP, and the
federation ``/timestamp_to_event`` between two nodes; responses validated against the
spec's OpenAPI when the run has it."""

from __future__ import annotations

import asyncio
from urllib.parse import quote

import pytest

from federation.client import RemoteError, federation_path
from tests.homeserver.client import Response, User
from tests.homeserver.conftest import Node
from tests.homeserver.openapi import ValidatingClient
from tests.homeserver.rooms.room_setup import users_with_room

LOOKUP = "GET /_matrix/client/v1/rooms/{roomId}/timestamp_to_event"


async def lookup(user: User, room_id: str, **params: str) -> Response:
    return await user.request(
        "GET",
        f"/_matrix/client/v1/rooms/{quote(room_id, safe='')}/timestamp_to_event",
        params=params,
    )


async def event_ts(user: User, room_id: str, event_id: str) -> int:
    event = await user.ok(
        "GET", f"/_matrix/client/v3/rooms/{quote(room_id)}/event/{quote(event_id)}"
    )
    return int(event["origin_server_ts"])


@pytest.fixture
def client(vclient: ValidatingClient) -> ValidatingClient:
    return vclient  # tests/homeserver/conftest.py: every response checked


async def test_nearest_event_in_each_direction(client: ValidatingClient) -> None:
    alice = await client.register("alice")
    room = await alice.create_room(preset="private_chat")
    ids = []
    for body in ("一", "二", "三"):
        ids.append(await alice.send(room, body))
        await asyncio.sleep(0.02)
    times = [await event_ts(alice, room, e) for e in ids]
    r = await lookup(alice, room, ts=str(times[1]), dir="f")
    assert r.status == 200 and r.body == {"event_id": ids[1], "origin_server_ts": times[1]}, r
    r = await lookup(alice, room, ts=str(times[1] + 1), dir="f")
    assert r.body["event_id"] == ids[2], r
    r = await lookup(alice, room, ts=str(times[1] + 1), dir="b")
    assert r.body["event_id"] == ids[1], r
    r = await lookup(alice, room, ts=str(times[2] + 60_000), dir="f")
    assert (r.status, r.body["errcode"]) == (404, "M_NOT_FOUND"), r
    r = await lookup(alice, room, ts="0", dir="b")
    assert (r.status, r.body["errcode"]) == (404, "M_NOT_FOUND"), r
    for params in ({"ts": "x", "dir": "f"}, {"ts": "1", "dir": "up"}, {"ts": "1"}, {"dir": "f"}):
        r = await lookup(alice, room, **params)
        assert r.status == 400 and r.body["errcode"] in ("M_INVALID_PARAM", "M_MISSING_PARAM"), r
    client.check(LOOKUP)


async def test_only_history_the_user_may_see(client: ValidatingClient) -> None:
    (alice, bob, eve), room = await users_with_room(
        client, "alice", "bob", "eve", preset="public_chat"
    )
    await alice.ok("PUT", f"/_matrix/client/v3/rooms/{quote(room)}/state/m.room.history_visibility",
                   {"history_visibility": "joined"})  # fmt: skip
    before = await alice.send(room, "before bob")
    ts = await event_ts(alice, room, before)
    # eve is not in the room: 403, whatever the time.
    r = await lookup(eve, room, ts=str(ts), dir="f")
    assert (r.status, r.body["errcode"]) == (403, "M_FORBIDDEN"), r
    r = await lookup(eve, "!unknown:example.org", ts=str(ts), dir="f")
    assert (r.status, r.body["errcode"]) == (403, "M_FORBIDDEN"), r
    await asyncio.sleep(0.02)
    await bob.join(room)
    # bob joined after "before bob": he is not told of it, but of the room's shared
    # history before the visibility became "joined" (which he may read), or his own join.
    r = await lookup(bob, room, ts=str(ts), dir="b")
    assert r.status == 200 and r.body["event_id"] != before, r
    assert r.body["origin_server_ts"] <= ts
    await bob.ok("GET", f"/_matrix/client/v3/rooms/{quote(room)}/event/{quote(r.body['event_id'])}")
    r = await lookup(bob, room, ts=str(ts), dir="f")
    assert r.status == 200 and r.body["event_id"] != before, r
    member = await bob.ok("GET", f"/_matrix/client/v3/rooms/{quote(room)}/state/m.room.member/{bob.user_id}",
                          params={"format": "event"})  # fmt: skip
    assert r.body["event_id"] == member["event_id"]
    r = await lookup(alice, room, ts=str(ts), dir="b")
    assert r.body["event_id"] == before
    client.check(LOOKUP)


async def test_federation_timestamp_to_event(pair: tuple[Node, Node]) -> None:
    a, b = pair
    async with a.client() as ca, b.client() as cb:
        alice, bob = await ca.register("alice"), await cb.register("bob")
        room = await alice.create_room(preset="public_chat")
        other = await alice.create_room(preset="private_chat")
        message = await alice.send(room, "hello")
        ts = await event_ts(alice, room, message)
        client = b.services.federation.client
        path = federation_path("v1", "timestamp_to_event", room)
        # B is in neither room yet.
        with pytest.raises(RemoteError) as refused:
            await client.request(a.server_name, "GET", path, query={"ts": str(ts), "dir": "b"})
        assert refused.value.status == 403
        await bob.ok(
            "POST", f"/_matrix/client/v3/join/{quote(room)}", {}, params={"via": a.server_name}
        )
        answer = await client.request(a.server_name, "GET", path, query={"ts": str(ts), "dir": "b"})
        assert answer == {"event_id": message, "origin_server_ts": ts}
        with pytest.raises(RemoteError) as none:
            await client.request(a.server_name, "GET", path, query={"ts": "0", "dir": "b"})
        assert (none.value.status, none.value.errcode) == (404, "M_NOT_FOUND")
        with pytest.raises(RemoteError) as bad:
            await client.request(a.server_name, "GET", path, query={"ts": "x", "dir": "b"})
        assert bad.value.status == 400
        with pytest.raises(RemoteError) as private:
            await client.request(
                a.server_name, "GET", federation_path("v1", "timestamp_to_event", other),
                query={"ts": str(ts), "dir": "f"},
            )  # fmt: skip
        assert private.value.status == 403
