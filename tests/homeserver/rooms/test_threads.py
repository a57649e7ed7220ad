"""``GET /v1/rooms/{roomId}/threads`` over real HTTP: order by latest activity, pagination,
``include=participated``, the thread summary bundled with each root, the attacker's side."""

from __future__ import annotations

import json
from urllib.parse import quote

from tests.homeserver.client import Client, User
from tests.homeserver.rooms.relation_helpers import V1, V3, edit, ids, redact, reply_in_thread


def threads_path(room_id: str) -> str:
    return f"{V1}/rooms/{room_id}/threads"


async def _three_threads(client: Client) -> tuple[User, User, str, list[str]]:
    """Alice's room with Bob: three thread roots (Bob's is the second), each with a reply
    by its author, then a new reply (Alice's) in the first."""
    alice = await client.register("alice")
    bob = await client.register("bob")
    room_id = await alice.create_room(preset="public_chat")
    await bob.join(room_id)
    roots = [
        await alice.send(room_id, "第一"),
        await bob.send(room_id, "第二"),
        await alice.send(room_id, "第三"),
    ]
    await reply_in_thread(alice, room_id, roots[0], "1-1")
    await reply_in_thread(bob, room_id, roots[1], "2-1")
    await reply_in_thread(alice, room_id, roots[2], "3-1")
    await reply_in_thread(alice, room_id, roots[0], "1-2")
    return alice, bob, room_id, roots


async def test_threads_by_latest_activity_and_paginated(client: Client) -> None:
    alice, _bob, room_id, roots = await _three_threads(client)
    body = await alice.ok("GET", threads_path(room_id))
    assert ids(body["chunk"]) == [roots[0], roots[2], roots[1]]
    assert "next_batch" not in body
    summary = body["chunk"][0]["unsigned"]["m.relations"]["m.thread"]
    assert summary["count"] == 2 and summary["current_user_participated"] is True
    assert summary["latest_event"]["content"]["body"] == "1-2"
    found: list[str] = []
    query = {"limit": "1"}
    while True:
        page = await alice.ok("GET", threads_path(room_id), params=query)
        found += ids(page["chunk"])
        if "next_batch" not in page:
            break
        query["from"] = page["next_batch"]
    assert found == [roots[0], roots[2], roots[1]]
    # A new reply moves its thread to the top.
    await reply_in_thread(alice, room_id, roots[1], "2-2")
    body = await alice.ok("GET", threads_path(room_id))
    assert ids(body["chunk"]) == [roots[1], roots[0], roots[2]]


async def test_include_participated(client: Client) -> None:
    _alice, bob, room_id, roots = await _three_threads(client)
    carol = await client.register("carol")
    await carol.join(room_id)
    mine = await bob.ok("GET", threads_path(room_id), params={"include": "participated"})
    assert ids(mine["chunk"]) == [roots[1]]
    # Bob replies in Alice's third thread: he took part in it now.
    await reply_in_thread(bob, room_id, roots[2], "bob too")
    mine = await bob.ok("GET", threads_path(room_id), params={"include": "participated"})
    assert ids(mine["chunk"]) == [roots[2], roots[1]]
    third = mine["chunk"][0]["unsigned"]["m.relations"]["m.thread"]
    assert third["current_user_participated"] is True and third["count"] == 2
    none = await carol.ok("GET", threads_path(room_id), params={"include": "participated"})
    assert none["chunk"] == []
    everything = await carol.ok("GET", threads_path(room_id))
    assert {
        e["event_id"]: e["unsigned"]["m.relations"]["m.thread"]["current_user_participated"]
        for e in everything["chunk"]
    } == dict.fromkeys(roots, False)


async def test_redacted_replies_leave_the_thread(client: Client) -> None:
    alice = await client.register("alice")
    room_id = await alice.create_room(preset="private_chat")
    root = await alice.send(room_id, "root")
    other = await alice.send(room_id, "other root")
    first = await reply_in_thread(alice, room_id, root, "first")
    await reply_in_thread(alice, room_id, other, "other reply")
    last = await reply_in_thread(alice, room_id, root, "last")
    assert ids((await alice.ok("GET", threads_path(room_id)))["chunk"]) == [root, other]
    await redact(alice, room_id, last)
    event = await alice.ok("GET", f"{V3}/rooms/{room_id}/event/{root}")
    summary = event["unsigned"]["m.relations"]["m.thread"]
    assert summary["count"] == 1 and summary["latest_event"]["event_id"] == first
    # The thread's latest activity is its first reply again.
    assert ids((await alice.ok("GET", threads_path(room_id)))["chunk"]) == [other, root]
    await redact(alice, room_id, first)
    event = await alice.ok("GET", f"{V3}/rooms/{room_id}/event/{root}")
    assert "m.relations" not in event["unsigned"]
    assert ids((await alice.ok("GET", threads_path(room_id)))["chunk"]) == [other]


async def test_replies_of_ignored_users_do_not_count(client: Client) -> None:
    alice, bob, room_id, roots = await _three_threads(client)
    await reply_in_thread(bob, room_id, roots[0], "bob's reply")
    await edit(bob, room_id, roots[1], "第二 (改)")
    ignore = {"ignored_users": {bob.user_id: {}}}
    await alice.ok(
        "PUT", f"{V3}/user/{quote(alice.user_id)}/account_data/m.ignored_user_list", ignore
    )
    body = await alice.ok("GET", threads_path(room_id))
    first = next(e for e in body["chunk"] if e["event_id"] == roots[0])
    summary = first["unsigned"]["m.relations"]["m.thread"]
    assert summary["count"] == 2 and summary["latest_event"]["content"]["body"] == "1-2"
    # Bob's own thread is listed with his root redacted (the spec), and no edit of it.
    bobs = next(e for e in body["chunk"] if e["event_id"] == roots[1])
    assert bobs["content"] == {} and "第二" not in json.dumps(body, ensure_ascii=False)


async def test_bad_parameters_and_strangers(client: Client) -> None:
    alice, _bob, room_id, _roots = await _three_threads(client)
    path = threads_path(room_id)
    for params in (
        {"include": "mine"},
        {"include": ""},
        {"limit": "0"},
        {"limit": "-3"},
        {"limit": "many"},
        {"from": "nonsense"},
        {"from": "t1x"},
    ):
        response = await alice.request("GET", path, params=params)
        assert (response.status, response.body["errcode"]) == (400, "M_INVALID_PARAM"), params
    eve = await client.register("eve")
    for target in (room_id, "!unknown:example.org"):
        response = await eve.request("GET", threads_path(target))
        assert (response.status, response.body["errcode"]) == (403, "M_FORBIDDEN"), target
    # A private room's threads stay with its members even once Eve knows the room ID.
    private = await alice.create_room(preset="private_chat")
    await reply_in_thread(alice, private, await alice.send(private, "secret"), "reply")
    response = await eve.request("GET", threads_path(private))
    assert response.status == 403


async def test_a_departed_member_sees_threads_as_at_their_leave(client: Client) -> None:
    alice = await client.register("alice")
    carol = await client.register("carol")
    room_id = await alice.create_room(preset="public_chat")
    await carol.join(room_id)
    root = await alice.send(room_id, "root")
    before = await reply_in_thread(carol, room_id, root, "before")
    await carol.ok("POST", f"{V3}/rooms/{room_id}/leave", {})
    await reply_in_thread(alice, room_id, root, "after")
    late = await alice.send(room_id, "late root")
    await reply_in_thread(alice, room_id, late, "late reply")
    body = await carol.ok("GET", threads_path(room_id))
    assert ids(body["chunk"]) == [root]
    summary = body["chunk"][0]["unsigned"]["m.relations"]["m.thread"]
    assert summary["latest_event"]["event_id"] == before and summary["count"] == 1
    assert json.dumps(body).count("after") == 0
