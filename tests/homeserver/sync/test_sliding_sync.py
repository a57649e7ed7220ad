"""Simplified Sliding Sync (MSC4186) over real HTTP, on both databases: the room list in
recency order with ranges, incremental responses, required_state, subscriptions, pos."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.homeserver.client import Client, Response, User
from tests.homeserver.conftest import Node
from tests.homeserver.sync.test_sync_changes import counting

PATH = "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync"


def body(
    ranges: list[list[int]] | None = None,
    timeline_limit: int = 1,
    required_state: list[list[str]] | None = None,
    **more: Any,
) -> dict[str, Any]:
    return {
        "lists": {
            "all": {
                "ranges": ranges or [[0, 19]],
                "timeline_limit": timeline_limit,
                "required_state": required_state or [],
            }
        },
        **more,
    }


async def ss(
    user: User, request: dict[str, Any], pos: str | None = None, timeout: int = 0
) -> Response:
    params = {"timeout": str(timeout)}
    if pos is not None:
        params["pos"] = pos
    return await user.request("POST", PATH, request, params=params)


async def ok(user: User, request: dict[str, Any], pos: str | None = None, timeout: int = 0) -> Any:
    response = await ss(user, request, pos, timeout)
    assert response.status == 200, response
    return response.body


async def test_versions_advertise_simplified_sliding_sync(client: Client) -> None:
    versions = await client.ok("GET", "/_matrix/client/versions")
    assert versions["unstable_features"]["org.matrix.simplified_msc3575"] is True


async def test_room_list_in_recency_order_and_incremental(client: Client) -> None:
    alice = await client.register("alice")
    rooms = [await alice.create_room(name=f"room {i}") for i in range(6)]
    # Activity order: room 2 newest, then 5, 4, 3, 1, 0.
    await alice.send(rooms[2], "late")
    first = await ok(alice, body(ranges=[[0, 2]]))
    ops = first["lists"]["all"]
    assert ops["count"] == 6
    assert ops["ops"] == [
        {"op": "SYNC", "range": [0, 2], "room_ids": [rooms[2], rooms[5], rooms[4]]}
    ]
    assert set(first["rooms"]) == {rooms[2], rooms[5], rooms[4]}
    entry = first["rooms"][rooms[2]]
    assert entry["initial"] is True
    assert entry["name"] == "room 2"
    assert entry["joined_count"] == 1 and entry["invited_count"] == 0
    assert [e["content"]["body"] for e in entry["timeline"]] == ["late"]
    assert entry["limited"] is True
    assert entry["num_live"] == 0
    assert entry["bump_stamp"] > first["rooms"][rooms[5]]["bump_stamp"]
    assert entry["notification_count"] == 0 and entry["highlight_count"] == 0
    # prev_batch pages back with /messages.
    older = await alice.ok(
        "GET",
        f"/_matrix/client/v3/rooms/{rooms[2]}/messages",
        params={"from": entry["prev_batch"], "dir": "b", "limit": "50"},
    )
    assert any(e["type"] == "m.room.create" for e in older["chunk"])
    # Nothing new: nothing sent (with timeout 0).
    again = await ok(alice, body(ranges=[[0, 2]]), first["pos"])
    assert again["rooms"] == {}
    # A new message moves room 0 to the top; only it is sent, with the new event only.
    await alice.send(rooms[0], "news")
    update = await ok(alice, body(ranges=[[0, 2]]), again["pos"])
    assert update["lists"]["all"]["ops"][0]["room_ids"] == [rooms[0], rooms[2], rooms[5]]
    assert list(update["rooms"]) == [rooms[0]]
    news = update["rooms"][rooms[0]]
    assert "initial" in news  # room 0 was never sent on this connection
    assert [e["content"]["body"] for e in news["timeline"]] == ["news"]
    await alice.send(rooms[0], "more")
    later = await ok(alice, body(ranges=[[0, 2]]), update["pos"])
    assert list(later["rooms"]) == [rooms[0]]
    more = later["rooms"][rooms[0]]
    assert "initial" not in more and more["limited"] is False and more["num_live"] == 1
    assert [e["content"]["body"] for e in more["timeline"]] == ["more"]


async def test_required_state_wildcard_lazy_and_me(client: Client) -> None:
    alice = await client.register("alice")
    bob = await client.register("bob")
    carol = await client.register("carol")
    room = await alice.create_room(name="party", preset="public_chat")
    await bob.join(room)
    await carol.join(room)
    await bob.send(room, "hi from bob")
    everything = await ok(carol, body(required_state=[["*", "*"]]))
    keys = {(e["type"], e["state_key"]) for e in everything["rooms"][room]["required_state"]}
    assert {("m.room.create", ""), ("m.room.name", ""), ("m.room.member", alice.user_id)} <= keys
    lazy = await ok(
        carol,
        body(required_state=[["m.room.member", "$LAZY"], ["m.room.member", "$ME"]]),
    )
    keys = {(e["type"], e["state_key"]) for e in lazy["rooms"][room]["required_state"]}
    assert keys == {("m.room.member", bob.user_id), ("m.room.member", carol.user_id)}
    typed = await ok(carol, body(required_state=[["m.room.name", ""]]))
    [name] = typed["rooms"][room]["required_state"]
    assert name["content"]["name"] == "party"


async def test_room_subscriptions_only_for_rooms_of_the_user(client: Client) -> None:
    alice = await client.register("alice")
    mallory = await client.register("mallory")
    secret = await alice.create_room(name="secret")
    await alice.send(secret, "private")
    sub = {"room_subscriptions": {secret: {"timeline_limit": 5, "required_state": [["*", "*"]]}}}
    found = await ok(mallory, sub)
    assert found["rooms"] == {}
    mine = await ok(alice, sub)
    assert "private" in [e["content"].get("body") for e in mine["rooms"][secret]["timeline"]]


async def test_kicked_user_sees_nothing_after_the_kick(client: Client) -> None:
    alice = await client.register("alice")
    bob = await client.register("bob")
    room = await alice.create_room(preset="public_chat")
    await bob.join(room)
    await alice.send(room, "before")
    await alice.ok("POST", f"/_matrix/client/v3/rooms/{room}/kick", {"user_id": bob.user_id})
    await alice.send(room, "after the kick")
    await alice.ok("PUT", f"/_matrix/client/v3/rooms/{room}/state/m.room.name", {"name": "renamed"})
    sub = {"room_subscriptions": {room: {"timeline_limit": 10, "required_state": [["*", "*"]]}}}
    found = await ok(bob, sub)
    entry = found["rooms"][room]
    bodies = [e["content"].get("body") for e in entry["timeline"]]
    assert "before" in bodies and "after the kick" not in bodies
    assert all(e["type"] != "m.room.name" for e in entry["required_state"])
    listed = await ok(bob, body(timeline_limit=10))
    assert "after the kick" not in str(listed["rooms"].get(room, {}))


async def test_pos_is_per_connection_and_device(client: Client) -> None:
    alice = await client.register("alice")
    mallory = await client.register("mallory")
    await alice.create_room()
    first = await ok(alice, body(conn_id="main"))
    for who, request in ((mallory, body(conn_id="main")), (alice, body(conn_id="other"))):
        refused = await ss(who, request, first["pos"])
        assert refused.status == 400 and refused.body["errcode"] == "M_UNKNOWN_POS"
    unknown = await ss(alice, body(conn_id="main"), "999/s1_0")
    assert unknown.status == 400 and unknown.body["errcode"] == "M_UNKNOWN_POS"
    bad = await ss(alice, body(conn_id="main"), "nonsense")
    assert bad.status == 400
    # Two connections of one device are independent.
    other = await ok(alice, body(conn_id="other"))
    assert other["rooms"]
    assert (await ok(alice, body(conn_id="main"), first["pos"]))["rooms"] == {}


async def test_bad_bodies_are_refused(client: Client) -> None:
    alice = await client.register("alice")
    for request in (
        {"lists": []},
        {"lists": {"a": {"ranges": [[0, 1]], "timeline_limit": "1", "required_state": []}}},
        {"lists": {"a": {"ranges": [[0, -1]], "timeline_limit": 1, "required_state": []}}},
        {"lists": {"a": {"ranges": [[0, 1]], "timeline_limit": 1}}},
        {"lists": {"a": {"timeline_limit": 1, "required_state": [["only"]]}}},
        {"room_subscriptions": {"!x:y": {"timeline_limit": 1, "required_state": "x"}}},
        {"conn_id": 5},
        {"extensions": {"to_device": {"enabled": True, "since": "abc"}}},
        {"extensions": {"account_data": {"enabled": True, "lists": "all"}}},
        {"lists": {"a": {"timeline_limit": 1, "required_state": [], "filters": {"is_dm": 1}}}},
    ):
        refused = await ss(alice, request)
        assert refused.status == 400, request
        assert refused.body["errcode"] in ("M_BAD_JSON", "M_INVALID_PARAM"), refused


async def test_long_poll_wakes_on_a_new_message(client: Client, node: Node) -> None:
    alice = await client.register("alice")
    room = await alice.create_room()
    first = await ok(alice, body())
    waiting = asyncio.create_task(ok(alice, body(), first["pos"], timeout=20_000))
    await asyncio.sleep(0.3)
    assert not waiting.done()
    await alice.send(room, "wake up")
    woken = await asyncio.wait_for(waiting, 10)
    assert [e["content"]["body"] for e in woken["rooms"][room]["timeline"]] == ["wake up"]


async def test_a_room_left_long_ago_is_subscribed_to_up_to_the_leave(client: Client) -> None:
    alice = await client.register("alice")
    bob = await client.register("bob")
    room = await alice.create_room(preset="public_chat")
    await bob.join(room)
    await alice.send(room, "while bob was in")
    await bob.ok("POST", f"/_matrix/client/v3/rooms/{room}/leave", {})
    await alice.send(room, "after bob left")
    # Not in the lists (his own leave, long ago), but a subscription shows it up to it.
    listed = await ok(bob, body(timeline_limit=5))
    assert room not in listed["rooms"] and listed["lists"]["all"]["count"] == 0
    sub = {"room_subscriptions": {room: {"timeline_limit": 10, "required_state": [["*", "*"]]}}}
    entry = (await ok(bob, sub))["rooms"][room]
    bodies = [e["content"].get("body") for e in entry["timeline"]]
    assert "while bob was in" in bodies and "after bob left" not in bodies
    assert entry["timeline"][-1]["content"]["membership"] == "leave"
    # Once forgotten, nothing.
    await bob.ok("POST", f"/_matrix/client/v3/rooms/{room}/forget", {})
    assert (await ok(bob, sub))["rooms"] == {}


async def test_many_rooms_in_several_ranges(client: Client) -> None:
    alice = await client.register("alice")
    rooms = [await alice.create_room() for _ in range(25)]
    newest_first = list(reversed(rooms))
    found = await ok(alice, body(ranges=[[0, 4], [10, 14], [23, 30]]))
    listed = found["lists"]["all"]
    assert listed["count"] == 25
    assert [op["room_ids"] for op in listed["ops"]] == [
        newest_first[0:5],
        newest_first[10:15],
        newest_first[23:25],
    ]
    assert [op["range"] for op in listed["ops"]] == [[0, 4], [10, 14], [23, 30]]
    assert set(found["rooms"]) == set(newest_first[0:5] + newest_first[10:15] + newest_first[23:])
    stamps = [found["rooms"][r]["bump_stamp"] for r in newest_first[0:5]]
    assert stamps == sorted(stamps, reverse=True)
    # Sliding the window sends the rooms new to the connection, and only them.
    slid = await ok(alice, body(ranges=[[0, 9]]), found["pos"])
    assert set(slid["rooms"]) == set(newest_first[5:10])
    assert all(entry["initial"] for entry in slid["rooms"].values())


async def test_growing_timeline_and_required_state(client: Client) -> None:
    alice = await client.register("alice")
    room = await alice.create_room(name="grow", topic="t")
    for i in range(3):
        await alice.send(room, f"m{i}")
    first = await ok(alice, body(timeline_limit=1, required_state=[["m.room.name", ""]]))
    assert len(first["rooms"][room]["timeline"]) == 1
    # A larger timeline_limit sends history again, marked as Synapse marks it.
    grown = await ok(
        alice, body(timeline_limit=3, required_state=[["m.room.name", ""]]), first["pos"]
    )
    entry = grown["rooms"][room]
    assert [e["content"]["body"] for e in entry["timeline"]] == ["m0", "m1", "m2"]
    assert entry["unstable_expanded_timeline"] is True and "initial" not in entry
    # More required state: only what was not asked for before.
    more = await ok(
        alice,
        body(timeline_limit=3, required_state=[["m.room.name", ""], ["m.room.topic", ""]]),
        grown["pos"],
    )
    assert [e["type"] for e in more["rooms"][room]["required_state"]] == ["m.room.topic"]
    assert "timeline" not in more["rooms"][room]


async def test_incremental_requests_ask_the_database_little(client: Client, node: Node) -> None:
    """A first response reads all its rooms' timelines at once; then the change trackers
    say which rooms may have news: a quiet request runs no statement, a message in a room
    already sent a handful, however many rooms."""
    alice = await client.register("alice")
    rooms = [await alice.create_room() for _ in range(30)]
    request = body(
        ranges=[[0, 9]],
        required_state=[["m.room.member", "$LAZY"], ["m.room.avatar", ""]],
        extensions={
            "account_data": {"enabled": True},
            "receipts": {"enabled": True},
            "typing": {"enabled": True},
        },
    )
    await ok(alice, {**request, "conn_id": "warm-up"})
    await node.services.sliding_sync.connections.flush()
    with counting(node) as initial:
        first = await ok(alice, request)
    # Ten rooms' timelines in one statement, their events serialized at once.
    assert len(first["rooms"]) == 10 and len(initial) <= 12, initial
    second = await ok(alice, request, first["pos"])
    # Positions are written just after each response: the earlier ones' writes are not
    # this request's statements.
    await node.services.sliding_sync.connections.flush()
    with counting(node) as quiet:
        third = await ok(alice, request, second["pos"])
    assert quiet == [] and third["rooms"] == {}
    await alice.send(rooms[-1], "hi")
    await node.services.sliding_sync.connections.flush()
    with counting(node) as news:
        fourth = await ok(alice, request, third["pos"])
    assert list(fourth["rooms"]) == [rooms[-1]]
    assert len(news) <= 6, news
