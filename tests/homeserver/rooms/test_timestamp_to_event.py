"""``GET /_matrix/client/v1/rooms/{roomId}/timestamp_to_event`` over real HTTP, and the
federation ``/timestamp_to_event`` between two nodes; responses validated against the
spec's OpenAPI when the run has it."""

from __future__ import annotations

import asyncio
from urllib.parse import quote

import pytest

from federation import room_versions
from federation.client import RemoteError, UnreachableError, federation_path
from homeserver.federation.timestamps import _fail_over, servers_to_ask
from homeserver.rooms.cache import RoomCache
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


async def _history_before_join(
    alice: User, bob: User, a: Node, visibility: str
) -> tuple[str, list[str], list[int]]:
    """A room of A's with three messages, then bob of B joined: B has none of them."""
    room = await alice.create_room(preset="public_chat")
    await alice.ok("PUT", f"/_matrix/client/v3/rooms/{quote(room)}/state/m.room.history_visibility",
                   {"history_visibility": visibility})  # fmt: skip
    ids = []
    for body in ("first", "second", "third"):
        await asyncio.sleep(0.02)
        ids.append(await alice.send(room, body))
    times = [await event_ts(alice, room, e) for e in ids]
    await asyncio.sleep(0.02)
    await bob.ok(
        "POST", f"/_matrix/client/v3/join/{quote(room)}", {}, params={"via": a.server_name}
    )
    for event_id in ids:
        r = await bob.request(
            "GET", f"/_matrix/client/v3/rooms/{quote(room)}/event/{quote(event_id)}"
        )
        assert r.status == 404, r  # not known on B
    return room, ids, times


async def test_history_before_the_join_is_asked_of_the_room_s_servers(
    pair: tuple[Node, Node],
) -> None:
    """As Synapse: where B's nearest event is next to a gap in its history (its first event,
    bob's join, follows events B lacks) or B has none, B asks A over federation, fetches the
    event A names and answers it when it is nearer."""
    a, b = pair
    async with a.client() as ca, b.client() as cb:
        alice, bob = await ca.register("alice"), await cb.register("bob")
        room, ids, times = await _history_before_join(alice, bob, a, "shared")
        # Backwards from the first message: B has nothing at all before it.
        r = await lookup(bob, room, ts=str(times[0]), dir="b")
        assert r.status == 200 and r.body == {"event_id": ids[0], "origin_server_ts": times[0]}, r
        # Forwards from the second: B's own nearest is bob's join, next to the gap.
        r = await lookup(bob, room, ts=str(times[1]), dir="f")
        assert r.status == 200 and r.body == {"event_id": ids[1], "origin_server_ts": times[1]}, r
        # Backwards from just before the third: B has the first and second now, but nothing
        # follows the second here: A is asked again and names the second.
        r = await lookup(bob, room, ts=str(times[2] - 1), dir="b")
        assert r.body["event_id"] == ids[1], r
        # The events fetched are B's now: readable, with context to paginate from.
        for event_id, body in zip(ids[:2], ("first", "second"), strict=True):
            event = await bob.ok(
                "GET", f"/_matrix/client/v3/rooms/{quote(room)}/event/{quote(event_id)}"
            )
            assert event["content"]["body"] == body and event["sender"] == alice.user_id
        context = await bob.ok(
            "GET", f"/_matrix/client/v3/rooms/{quote(room)}/context/{quote(ids[1])}"
        )
        assert context["event"]["event_id"] == ids[1] and context["start"] and context["end"]
        # Before the room was made: neither server has anything.
        r = await lookup(bob, room, ts="1", dir="b")
        assert (r.status, r.body["errcode"]) == (404, "M_NOT_FOUND"), r
        # A, which has the whole history, answers from it alone.
        r = await lookup(alice, room, ts=str(times[2]), dir="b")
        assert r.body["event_id"] == ids[2], r


async def test_what_is_fetched_is_answered_only_if_the_user_may_see_it(
    pair: tuple[Node, Node],
) -> None:
    a, b = pair
    async with a.client() as ca, b.client() as cb:
        alice, bob = await ca.register("alice"), await cb.register("bob")
        room, ids, times = await _history_before_join(alice, bob, a, "joined")
        # A names the first message, but bob was not in the room then.
        r = await lookup(bob, room, ts=str(times[0]), dir="b")
        assert (r.status, r.body["errcode"]) == (404, "M_NOT_FOUND"), r
        r = await lookup(bob, room, ts=str(times[0]), dir="f")
        assert r.status == 200 and r.body["event_id"] not in ids, r
        assert r.body["origin_server_ts"] > times[2]  # bob's own join, or later


def test_servers_asked_and_when_to_ask_the_next() -> None:
    members = {
        "@a:big.example": "join", "@b:big.example": "join", "@c:creator.example": "join",
        "@d:small.example": "join", "@e:gone.example": "leave", "@me:here.example": "join",
    }  # fmt: skip
    room = RoomCache("!r:creator.example", room_versions.get("10"), {}, None, [], 0, members)
    assert servers_to_ask(room, "here.example") == [
        "creator.example", "big.example", "small.example"
    ]  # fmt: skip
    assert _fail_over(UnreachableError("down"))
    assert _fail_over(RemoteError(502, None, "bad gateway"))
    assert _fail_over(RemoteError(404, "M_UNRECOGNIZED", "unknown endpoint"))
    assert not _fail_over(RemoteError(404, "M_NOT_FOUND", "no event"))
    assert not _fail_over(RemoteError(403, "M_FORBIDDEN", "not in room"))
