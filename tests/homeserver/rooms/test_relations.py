"""``GET /v1/rooms/{roomId}/relations/{eventId}[/{relType}[/{eventType}]]`` over real HTTP:
pagination both ways, the filters, ``recurse``, and the attacker's side."""

from __future__ import annotations

from typing import Any

from tests.homeserver.client import Client, User
from tests.homeserver.rooms.relation_helpers import (
    V3,
    edit,
    ids,
    react,
    redact,
    reference,
    relations_path,
    reply_in_thread,
    send,
)


async def _room_with_children(client: Client) -> tuple[User, str, str, list[str]]:
    """Alice's room: a root and six children of it, in the order sent."""
    alice = await client.register("alice")
    room_id = await alice.create_room(preset="private_chat")
    root = await alice.send(room_id, "防災訓練の件")
    children = [
        await reply_in_thread(alice, room_id, root, "一"),
        await react(alice, room_id, root, "👍"),
        await reply_in_thread(alice, room_id, root, "二"),
        await reference(alice, room_id, root, "参照"),
        await edit(alice, room_id, root, "防災訓練の件 (改)"),
        await reply_in_thread(alice, room_id, root, "三"),
    ]
    return alice, room_id, root, children


async def _all_pages(user: User, path: str, **params: str) -> tuple[list[str], list[Any]]:
    seen: list[str] = []
    bodies: list[Any] = []
    query = dict(params)
    while True:
        body = await user.ok("GET", path, params=query)
        bodies.append(body)
        seen += ids(body["chunk"])
        if "next_batch" not in body:
            return seen, bodies
        assert len(body["chunk"]) == int(params["limit"])
        query["from"] = body["next_batch"]


async def test_children_newest_first_and_paginated_both_ways(client: Client) -> None:
    alice, room_id, root, children = await _room_with_children(client)
    path = relations_path(room_id, root)
    body = await alice.ok("GET", path)
    # The default limit is 5 (as Synapse): the newest five, then a token for the rest.
    assert ids(body["chunk"]) == children[::-1][:5]
    assert "prev_batch" not in body and "recursion_depth" not in body
    rest = await alice.ok("GET", path, params={"from": body["next_batch"]})
    assert ids(rest["chunk"]) == [children[0]] and "next_batch" not in rest
    assert rest["prev_batch"] == body["next_batch"]
    backwards, _ = await _all_pages(alice, path, limit="2")
    assert backwards == children[::-1]
    forwards, _ = await _all_pages(alice, path, limit="2", dir="f")
    assert forwards == children
    # `to` stops where a page of the other direction ended.
    first = await alice.ok("GET", path, params={"limit": "2", "dir": "f"})
    upto = await alice.ok("GET", path, params={"to": first["next_batch"]})
    assert ids(upto["chunk"]) == children[2:][::-1]
    # A token of /messages is a starting point too.
    messages = await alice.ok("GET", f"{V3}/rooms/{room_id}/messages", params={"limit": "3"})
    older = await alice.ok("GET", path, params={"from": messages["end"], "limit": "10"})
    assert ids(older["chunk"]) == children[:3][::-1]
    # The children carry the original content (an edit is a child like any other).
    shown = {e["event_id"]: e for e in body["chunk"]}
    assert shown[children[4]]["content"]["m.new_content"]["body"] == "防災訓練の件 (改)"


async def test_rel_type_and_event_type_filters(client: Client) -> None:
    alice, room_id, root, children = await _room_with_children(client)
    threaded = await alice.ok("GET", relations_path(room_id, root, "m.thread"))
    assert ids(threaded["chunk"]) == [children[5], children[2], children[0]]
    reactions = await alice.ok("GET", relations_path(room_id, root, "m.annotation", "m.reaction"))
    assert ids(reactions["chunk"]) == [children[1]]
    none = await alice.ok("GET", relations_path(room_id, root, "m.annotation", "m.room.message"))
    assert none["chunk"] == [] and "next_batch" not in none
    unknown = await alice.ok("GET", relations_path(room_id, root, "org.example.none"))
    assert unknown["chunk"] == []


async def test_encrypted_children_are_filtered_by_their_cleartext_relation(
    client: Client,
) -> None:
    alice = await client.register("alice")
    room_id = await alice.create_room(preset="private_chat")
    root = await alice.send(room_id, "root")
    ciphertext = {"algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "AwgA", "device_id": "D"}
    threaded = await send(
        alice,
        room_id,
        {**ciphertext, "m.relates_to": {"rel_type": "m.thread", "event_id": root}},
        "m.room.encrypted",
    )
    # A relation only inside the ciphertext is no relation for the server.
    await send(alice, room_id, ciphertext, "m.room.encrypted")
    found = await alice.ok("GET", relations_path(room_id, root, "m.thread", "m.room.encrypted"))
    assert ids(found["chunk"]) == [threaded]
    assert (await alice.ok("GET", relations_path(room_id, root, "m.reference")))["chunk"] == []


async def test_recurse_follows_three_levels_with_the_filters_at_every_level(
    client: Client,
) -> None:
    alice = await client.register("alice")
    room_id = await alice.create_room(preset="private_chat")
    root = await alice.send(room_id, "root")
    level1 = await reply_in_thread(alice, room_id, root, "1")
    level2 = await react(alice, room_id, level1, "👀")
    level3 = await reference(alice, room_id, level2, "3")
    level4 = await reference(alice, room_id, level3, "4")
    path = relations_path(room_id, root)
    direct = await alice.ok("GET", path)
    assert ids(direct["chunk"]) == [level1] and "recursion_depth" not in direct
    deep = await alice.ok("GET", path, params={"recurse": "true"})
    assert ids(deep["chunk"]) == [level3, level2, level1] and level4 not in ids(deep["chunk"])
    assert deep["recursion_depth"] == 3
    paged, _ = await _all_pages(alice, path, recurse="true", limit="1", dir="f")
    assert paged == [level1, level2, level3]
    # level3 is a reference, but reached only through a thread reply and a reaction.
    refs = await alice.ok(
        "GET", relations_path(room_id, root, "m.reference"), params={"recurse": "true"}
    )
    assert refs["chunk"] == [] and refs["recursion_depth"] == 3
    assert ids((await alice.ok("GET", relations_path(room_id, level2), params={"recurse": "true"}))[
        "chunk"
    ]) == [level4, level3]  # fmt: skip


async def test_bad_parameters_are_invalid_params(client: Client) -> None:
    alice, room_id, root, _ = await _room_with_children(client)
    path = relations_path(room_id, root)
    for params in (
        {"dir": "x"},
        {"dir": ""},
        {"limit": "-1"},
        {"limit": "ten"},
        {"limit": "1e3"},
        {"limit": "²"},
        {"from": "garbage"},
        {"from": "t"},
        {"to": "s1x"},
        {"from": "t99999999999999999999999"},
        {"recurse": "yes"},
    ):
        response = await alice.request("GET", path, params=params)
        assert (response.status, response.body["errcode"]) == (400, "M_INVALID_PARAM"), params
    huge = await alice.ok("GET", path, params={"limit": "100000"})
    assert len(huge["chunk"]) == 6


async def test_strangers_and_other_rooms_events(client: Client) -> None:
    _alice, room_id, root, children = await _room_with_children(client)
    eve = await client.register("eve")
    response = await eve.request("GET", relations_path(room_id, root))
    assert (response.status, response.body["errcode"]) == (403, "M_FORBIDDEN")
    # Eve's own room, asked about Alice's event: not found there.
    eves_room = await eve.create_room(preset="private_chat")
    for event_id in (root, children[0], "$unknown", "not-an-id"):
        response = await eve.request("GET", relations_path(eves_room, event_id))
        assert (response.status, response.body["errcode"]) == (404, "M_NOT_FOUND"), event_id
    response = await eve.request("GET", relations_path("!nowhere:example.org", root))
    assert (response.status, response.body["errcode"]) == (403, "M_FORBIDDEN")
    response = await client.request("GET", relations_path(room_id, root))
    assert response.status == 401


async def test_a_departed_member_sees_no_child_sent_after_leaving(client: Client) -> None:
    alice = await client.register("alice")
    carol = await client.register("carol")
    room_id = await alice.create_room(preset="public_chat")
    await carol.join(room_id)
    root = await alice.send(room_id, "root")
    before = await reply_in_thread(alice, room_id, root, "before")
    await carol.ok("POST", f"{V3}/rooms/{room_id}/leave", {})
    after = await reply_in_thread(alice, room_id, root, "after")
    late_root = await alice.send(room_id, "late root")
    body = await carol.ok("GET", relations_path(room_id, root), params={"recurse": "true"})
    assert ids(body["chunk"]) == [before]
    response = await carol.request("GET", relations_path(room_id, late_root))
    assert (response.status, response.body["errcode"]) == (404, "M_NOT_FOUND")
    # A token from after the leave does not reach past it either.
    token = (await alice.sync())["next_batch"]
    body = await carol.ok("GET", relations_path(room_id, root), params={"from": token})
    assert after not in ids(body["chunk"])


async def test_a_second_identical_annotation_is_refused(client: Client) -> None:
    alice = await client.register("alice")
    bob = await client.register("bob")
    room_id = await alice.create_room(preset="public_chat")
    await bob.join(room_id)
    target = await alice.send(room_id, "賛成の方は")
    content = {"m.relates_to": {"rel_type": "m.annotation", "event_id": target, "key": "👍"}}
    path = f"{V3}/rooms/{room_id}/send/m.reaction/same-txn"
    first = (await bob.ok("PUT", path, content))["event_id"]
    # The same request again (a client's retry) is answered with its event.
    assert (await bob.ok("PUT", path, content))["event_id"] == first
    response = await bob.request("PUT", f"{V3}/rooms/{room_id}/send/m.reaction/other", content)
    assert (response.status, response.body["errcode"]) == (400, "M_DUPLICATE_ANNOTATION")
    # Another key, another user: fine; and again once the first is redacted.
    await react(bob, room_id, target, "🎉")
    await react(alice, room_id, target, "👍")
    await redact(bob, room_id, first)
    await react(bob, room_id, target, "👍")


async def test_no_thread_off_an_event_with_a_relation(client: Client) -> None:
    alice = await client.register("alice")
    room_id = await alice.create_room(preset="private_chat")
    root = await alice.send(room_id, "root")
    reply = await reply_in_thread(alice, room_id, root, "reply")
    content = {
        "msgtype": "m.text",
        "body": "x",
        "m.relates_to": {"rel_type": "m.thread", "event_id": reply},
    }
    response = await alice.request(
        "PUT", f"{V3}/rooms/{room_id}/send/m.room.message/nested", content
    )
    assert (response.status, response.body["errcode"]) == (400, "M_UNKNOWN")
    await reply_in_thread(alice, room_id, root, "another reply")
