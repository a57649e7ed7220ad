"""Hostile clients, issue 10 point 1: state after a leave or a ban must not reach the former
member.  One mechanism (homeserver/rooms/visibility.py) decides what state a user may see
at a point of a room's history; these tests read every endpoint that returns state or
events as the departed member, the banned member, a stranger and (the control) a member.

Add the next endpoint that returns a room's state or events (relations, threads, ...) to
``READS`` below: the tests then hold it to the same rule.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest

from tests.homeserver.client import Client, User

V3 = "/_matrix/client/v3"
V1 = "/_matrix/client/v1"
LAZY = json.dumps({"lazy_load_members": True})
#: What the room looked like while the former member was in it, and after.
BEFORE = {"topic": "定例会の連絡", "name": "根室4町 担当者会", "alice": "Alice (総務課)"}
AFTER = {"topic": "退室後の話題", "name": "新しい部屋名", "alice": "Alice (異動後)"}


@dataclass
class Room:
    room_id: str
    alice: User
    #: An event the former member saw (before the leave), and one they must not.
    seen: str
    unseen: str
    #: A sync token taken after the changes.
    late_token: str


async def change_everything(alice: User, room_id: str, thread_root: str) -> str:
    """Alice changes the topic, the name and her display name, then talks (a reply in the
    thread of ``thread_root``, which the thread summary bundled with it would show)."""
    await alice.ok("PUT", f"{V3}/rooms/{room_id}/state/m.room.topic", {"topic": AFTER["topic"]})
    await alice.ok("PUT", f"{V3}/rooms/{room_id}/state/m.room.name", {"name": AFTER["name"]})
    member = f"{V3}/rooms/{room_id}/state/m.room.member/{quote(alice.user_id)}"
    await alice.ok("PUT", member, {"membership": "join", "displayname": AFTER["alice"]})
    reply = {
        "msgtype": "m.text",
        "body": "退室後のメッセージ",
        "m.relates_to": {"rel_type": "m.thread", "event_id": thread_root},
    }
    path = f"{V3}/rooms/{room_id}/send/m.room.message/after-leave"
    return str((await alice.ok("PUT", path, reply))["event_id"])


async def shared_room(client: Client, other: User, departure: str) -> Room:
    """Alice's room with ``other`` in it, who then leaves (``leave``) or is banned
    (``ban``), after which Alice changes the room's state."""
    alice = await client.register("alice")
    await alice.ok("PUT", f"{V3}/profile/{quote(alice.user_id)}/displayname",
                   {"displayname": BEFORE["alice"]})  # fmt: skip
    room_id = await alice.create_room(
        preset="public_chat", name=BEFORE["name"], topic=BEFORE["topic"]
    )
    await other.join(room_id)
    seen = await alice.send(room_id, "退室前のメッセージ")
    if departure == "leave":
        await other.ok("POST", f"{V3}/rooms/{room_id}/leave", {})
    else:
        await alice.ok("POST", f"{V3}/rooms/{room_id}/ban", {"user_id": other.user_id})
    unseen = await change_everything(alice, room_id, seen)
    token = (await alice.sync())["next_batch"]
    return Room(room_id, alice, seen, unseen, token)


# ------------------------------------------------------------------ what each endpoint shows


def texts(events: list[dict[str, Any]]) -> set[str]:
    """The topic, name and display names that a list of state events shows."""
    found: set[str] = set()
    for event in events:
        content = event.get("content", {})
        for field in ("topic", "name", "displayname"):
            if isinstance(content.get(field), str):
                found.add(content[field])
    return found


def event_ids(events: list[dict[str, Any]]) -> set[str]:
    """The events' IDs and those of the events bundled with them (``m.relations``)."""
    found: set[str] = set()
    for event in events:
        found.add(event["event_id"])
        relations = event.get("unsigned", {}).get("m.relations", {})
        if "m.thread" in relations:
            found |= event_ids([relations["m.thread"]["latest_event"]])
        if "m.replace" in relations:
            found.add(relations["m.replace"]["event_id"])
        found |= {e["event_id"] for e in relations.get("m.reference", {}).get("chunk", [])}
    return found


Read = Callable[[User, Room], Awaitable[tuple[set[str], set[str]]]]
"""An endpoint read: (the state texts it shows, the event IDs it shows)."""


async def context(user: User, room: Room) -> tuple[set[str], set[str]]:
    body = await user.ok("GET", f"{V3}/rooms/{room.room_id}/context/{room.seen}?limit=20")
    shown = [body["event"], *body["events_before"], *body["events_after"]]
    return texts(body["state"]), event_ids(shown)


async def context_lazy(user: User, room: Room) -> tuple[set[str], set[str]]:
    path = f"{V3}/rooms/{room.room_id}/context/{room.seen}?limit=20&filter={quote(LAZY)}"
    body = await user.ok("GET", path)
    shown = [body["event"], *body["events_before"], *body["events_after"]]
    return texts(body["state"]), event_ids(shown)


async def messages_lazy(user: User, room: Room) -> tuple[set[str], set[str]]:
    path = f"{V3}/rooms/{room.room_id}/messages?dir=b&limit=50&filter={quote(LAZY)}"
    body = await user.ok("GET", path)
    shown = texts(body["chunk"]) | texts(body.get("state", []))
    return shown, event_ids(body["chunk"])


async def messages_from_late_token(user: User, room: Room) -> tuple[set[str], set[str]]:
    path = f"{V3}/rooms/{room.room_id}/messages?dir=b&limit=50&from={room.late_token}"
    body = await user.ok("GET", path)
    return texts(body["chunk"]), event_ids(body["chunk"])


async def state(user: User, room: Room) -> tuple[set[str], set[str]]:
    events = await user.ok("GET", f"{V3}/rooms/{room.room_id}/state")
    return texts(events), event_ids(events)


async def state_events(user: User, room: Room) -> tuple[set[str], set[str]]:
    found: list[dict[str, Any]] = []
    for key in ("m.room.topic", "m.room.name", f"m.room.member/{quote(room.alice.user_id)}"):
        path = f"{V3}/rooms/{room.room_id}/state/{key}?format=event"
        found.append(await user.ok("GET", path))
    return texts(found), event_ids(found)


async def members(user: User, room: Room) -> tuple[set[str], set[str]]:
    chunk = (await user.ok("GET", f"{V3}/rooms/{room.room_id}/members"))["chunk"]
    return texts(chunk), event_ids(chunk)


async def members_at_late_token(user: User, room: Room) -> tuple[set[str], set[str]]:
    path = f"{V3}/rooms/{room.room_id}/members?at={room.late_token}"
    chunk = (await user.ok("GET", path))["chunk"]
    return texts(chunk), event_ids(chunk)


async def event(user: User, room: Room) -> tuple[set[str], set[str]]:
    shown: set[str] = set()
    for event_id in (room.seen, room.unseen):
        response = await user.request("GET", f"{V3}/rooms/{room.room_id}/event/{event_id}")
        if response.status == 200:
            shown.add(response.body["event_id"])
        else:
            assert (response.status, response.body["errcode"]) == (404, "M_NOT_FOUND")
    return set(), shown


async def sync_with_leave(user: User, room: Room) -> tuple[set[str], set[str]]:
    sync_filter = json.dumps({"room": {"include_leave": True, "timeline": {"limit": 50}}})
    body = await user.sync(filter=sync_filter)
    section = body["rooms"]["leave"][room.room_id]
    timeline = section["timeline"]["events"]
    return texts(section["state"]["events"]) | texts(timeline), event_ids(timeline)


async def sync_with_leave_lazy(user: User, room: Room) -> tuple[set[str], set[str]]:
    sync_filter = json.dumps(
        {"room": {"include_leave": True, "state": {"lazy_load_members": True}}}
    )
    body = await user.sync(filter=sync_filter)
    section = body["rooms"]["leave"][room.room_id]
    timeline = section["timeline"]["events"]
    return texts(section["state"]["events"]) | texts(timeline), event_ids(timeline)


async def relations(user: User, room: Room) -> tuple[set[str], set[str]]:
    shown: set[str] = set()
    for event_id in (room.seen, room.unseen):
        path = f"{V1}/rooms/{room.room_id}/relations/{event_id}?recurse=true&limit=50"
        response = await user.request("GET", path)
        if response.status == 200:
            shown |= event_ids(response.body["chunk"])
        else:
            assert (response.status, response.body["errcode"]) == (404, "M_NOT_FOUND")
    return set(), shown


async def threads(user: User, room: Room) -> tuple[set[str], set[str]]:
    body = await user.ok("GET", f"{V1}/rooms/{room.room_id}/threads?limit=50")
    return set(), event_ids(body["chunk"])


READS: dict[str, Read] = {
    "context": context,
    "context lazy_load_members": context_lazy,
    "messages lazy_load_members": messages_lazy,
    "messages from a later token": messages_from_late_token,
    "state": state,
    "state/{type}/{key}": state_events,
    "members": members,
    "members at a later token": members_at_late_token,
    "event": event,
    "sync leave section": sync_with_leave,
    "sync leave section lazy_load_members": sync_with_leave_lazy,
    "relations": relations,
    "threads": threads,
}


@pytest.mark.parametrize("departure", ["leave", "ban"])
async def test_a_former_member_sees_no_state_or_event_after_leaving(
    client: Client, departure: str
) -> None:
    carol = await client.register("carol")
    room = await shared_room(client, carol, departure)
    for name, read in READS.items():
        shown, ids = await read(carol, room)
        assert not shown & set(AFTER.values()), (name, shown)
        assert room.unseen not in ids, name
    # What the former member may see, they do see (the reads are not empty by accident).
    for name in ("context", "state", "state/{type}/{key}", "sync leave section"):
        shown, ids = await READS[name](carol, room)
        assert {BEFORE["topic"], BEFORE["name"], BEFORE["alice"]} <= shown, (name, shown)
    for name in ("members", "members at a later token", "messages lazy_load_members"):
        shown, ids = await READS[name](carol, room)
        assert BEFORE["alice"] in shown, (name, shown)
    shown, ids = await event(carol, room)
    assert ids == {room.seen}
    # Alice's thread began after the leave: no thread at all for the former member.
    _, ids = await threads(carol, room)
    assert ids == set()
    # /joined_members is for current members only.
    response = await carol.request("GET", f"{V3}/rooms/{room.room_id}/joined_members")
    assert (response.status, response.body["errcode"]) == (403, "M_FORBIDDEN")


async def test_a_member_sees_the_state_as_it_is_now(client: Client) -> None:
    """The control: a member who stays sees the new state through the same reads."""
    carol = await client.register("carol")
    room = await shared_room(client, carol, "leave")
    alice = room.alice
    for name in ("state", "state/{type}/{key}"):
        shown, _ = await READS[name](alice, room)
        assert shown >= {AFTER["topic"], AFTER["name"], AFTER["alice"]}, (name, shown)
        assert not {BEFORE["topic"], BEFORE["name"]} & shown, (name, shown)
    shown, ids = await READS["messages from a later token"](alice, room)
    assert shown >= set(AFTER.values()) and room.unseen in ids
    for name in ("members", "members at a later token", "messages lazy_load_members"):
        shown, _ = await READS[name](alice, room)
        assert AFTER["alice"] in shown, (name, shown)
    _, ids = await event(alice, room)
    assert ids == {room.seen, room.unseen}
    for read in (relations, threads):
        _, ids = await read(alice, room)
        assert room.unseen in ids
    joined = await alice.ok("GET", f"{V3}/rooms/{room.room_id}/joined_members")
    assert joined["joined"] == {alice.user_id: {"display_name": AFTER["alice"]}}


async def test_context_state_is_the_state_at_the_last_event_returned(client: Client) -> None:
    """The spec: /context's ``state`` is the state at the last event returned, also for a
    member (not the room's current state)."""
    alice = await client.register("alice")
    room_id = await alice.create_room(preset="private_chat", topic=BEFORE["topic"])
    first = await alice.send(room_id, "一通目")
    await alice.ok("PUT", f"{V3}/rooms/{room_id}/state/m.room.topic", {"topic": AFTER["topic"]})
    body = await alice.ok("GET", f"{V3}/rooms/{room_id}/context/{first}?limit=0")
    assert body["events_after"] == []
    assert BEFORE["topic"] in texts(body["state"])
    assert AFTER["topic"] not in texts(body["state"])
    body = await alice.ok("GET", f"{V3}/rooms/{room_id}/context/{first}?limit=10")
    assert AFTER["topic"] in texts(body["state"])


async def test_lazy_loaded_members_are_those_of_the_events_returned(client: Client) -> None:
    alice = await client.register("alice")
    bob = await client.register("bob")
    dave = await client.register("dave")
    room_id = await alice.create_room(preset="public_chat")
    await bob.join(room_id)
    await dave.join(room_id)
    await dave.send(room_id, "dave の発言")
    spoken = await bob.send(room_id, "bob の発言")
    path = f"{V3}/rooms/{room_id}/messages?dir=b&limit=1&filter={quote(LAZY)}"
    body = await alice.ok("GET", path)
    assert event_ids(body["chunk"]) == {spoken}
    assert {e["state_key"] for e in body["state"]} == {bob.user_id}
    path = f"{V3}/rooms/{room_id}/context/{spoken}?limit=0&filter={quote(LAZY)}"
    body = await alice.ok("GET", path)
    shown = {e["state_key"] for e in body["state"] if e["type"] == "m.room.member"}
    assert shown == {bob.user_id}
    assert "m.room.create" in {e["type"] for e in body["state"]}


async def test_a_stranger_reads_nothing_unless_the_room_is_world_readable(
    client: Client,
) -> None:
    alice = await client.register("alice")
    eve = await client.register("eve")
    room_id = await alice.create_room(preset="public_chat", topic=BEFORE["topic"])
    seen = await alice.send(room_id, "内部の連絡")

    def paths(event_id: str) -> list[str]:
        return [
            f"{V3}/rooms/{room_id}/state",
            f"{V3}/rooms/{room_id}/state/m.room.topic",
            f"{V3}/rooms/{room_id}/members",
            f"{V3}/rooms/{room_id}/joined_members",
            f"{V3}/rooms/{room_id}/messages?dir=b",
            f"{V1}/rooms/{room_id}/threads",
            f"{V3}/rooms/{room_id}/context/{event_id}",
            f"{V3}/rooms/{room_id}/event/{event_id}",
            f"{V1}/rooms/{room_id}/relations/{event_id}",
        ]

    for path in paths(seen):
        response = await eve.request("GET", path)
        assert (response.status, response.body["errcode"]) == (403, "M_FORBIDDEN"), path
    visibility = {"history_visibility": "world_readable"}
    await alice.ok("PUT", f"{V3}/rooms/{room_id}/state/m.room.history_visibility", visibility)
    public = await alice.send(room_id, "公開の連絡")
    for path in paths(public):
        response = await eve.request("GET", path)
        expected = 403 if path.endswith("/joined_members") else 200
        assert response.status == expected, (path, response)
    # What was said before the room became world-readable stays with its members.
    for path in paths(seen)[-3:]:
        response = await eve.request("GET", path)
        assert (response.status, response.body["errcode"]) == (404, "M_NOT_FOUND"), path
