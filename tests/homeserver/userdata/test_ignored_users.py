"""Ignoring users (the spec's "Ignoring Users" module, as Synapse does it): once Alice puts
Mallory in her ``m.ignored_user_list``, she no longer gets Mallory's events (but state
events) in /sync, /messages, /context or /event, nor Mallory's invites, and Mallory's
messages notify her no more; other members see everything; un-ignoring does not replay
what was missed."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from tests.homeserver.client import Client, User
from tests.homeserver.conftest import Node

V3 = "/_matrix/client/v3"


def ignore_path(user: User) -> str:
    return f"{V3}/user/{quote(user.user_id)}/account_data/m.ignored_user_list"


async def ignore(user: User, *others: User) -> None:
    await user.ok("PUT", ignore_path(user), {"ignored_users": {o.user_id: {} for o in others}})


def timeline(sync: dict[str, Any], room_id: str) -> list[dict[str, Any]]:
    room = sync.get("rooms", {}).get("join", {}).get(room_id, {})
    events: list[dict[str, Any]] = room.get("timeline", {}).get("events", [])
    return events


def bodies(events: list[dict[str, Any]]) -> list[str]:
    return [e["content"]["body"] for e in events if e["type"] == "m.room.message"]


async def _room(client: Client) -> tuple[User, User, User, str]:
    alice = await client.register("alice")
    bob = await client.register("bob")
    mallory = await client.register("mallory")
    room_id = await alice.create_room(preset="public_chat")
    await bob.join(room_id)
    await mallory.join(room_id)
    return alice, bob, mallory, room_id


async def test_ignored_users_messages_are_hidden_but_not_their_state(
    node: Node, client: Client
) -> None:
    alice, bob, mallory, room_id = await _room(client)
    await mallory.send(room_id, "before")
    since = (await alice.sync())["next_batch"]
    await ignore(alice, mallory)

    await mallory.send(room_id, "spam")
    renamed = await mallory.ok(
        "PUT",
        f"{V3}/rooms/{room_id}/state/m.room.member/{quote(mallory.user_id)}",
        {"membership": "join", "displayname": "Mallory 2"},
    )
    await bob.send(room_id, "hello")

    incremental = await alice.sync(since=since)
    events = timeline(incremental, room_id)
    assert bodies(events) == ["hello"]
    # State events of the ignored user still arrive (the room looks the same to everyone).
    assert renamed["event_id"] in [e["event_id"] for e in events]
    # Bob, who ignores no one, sees it all.
    assert bodies(timeline(await bob.sync(), room_id))[-2:] == ["spam", "hello"]

    # A fresh sync and /messages leave out every message of Mallory's, earlier ones too.
    assert "spam" not in bodies(timeline(await alice.sync(), room_id))
    history = await alice.ok(
        "GET", f"{V3}/rooms/{room_id}/messages", params={"dir": "b", "limit": "50"}
    )
    assert bodies(history["chunk"]) == ["hello"]
    assert renamed["event_id"] in [e["event_id"] for e in history["chunk"]]

    # Single events and context of them: not found for Alice, found for Bob.
    spam_id = next(e["event_id"] for e in history_of_bob(await bob.sync()) if is_spam(e))
    missing = await alice.request("GET", f"{V3}/rooms/{room_id}/event/{spam_id}")
    assert missing.status == 404 and missing.body["errcode"] == "M_NOT_FOUND"
    missing = await alice.request("GET", f"{V3}/rooms/{room_id}/context/{spam_id}")
    assert missing.status == 404
    assert (await bob.ok("GET", f"{V3}/rooms/{room_id}/event/{spam_id}"))["event_id"] == spam_id


def history_of_bob(sync: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for room in sync["rooms"]["join"].values() for e in room["timeline"]["events"]]


def is_spam(event: dict[str, Any]) -> bool:
    return event["type"] == "m.room.message" and event["content"].get("body") == "spam"


async def test_unignoring_does_not_replay_what_was_missed(node: Node, client: Client) -> None:
    alice, _bob, mallory, room_id = await _room(client)
    await ignore(alice, mallory)
    since = (await alice.sync())["next_batch"]
    await mallory.send(room_id, "missed")
    after_missed = await alice.sync(since=since)
    assert bodies(timeline(after_missed, room_id)) == []
    await alice.ok("PUT", ignore_path(alice), {"ignored_users": {}})
    await mallory.send(room_id, "seen")
    later = await alice.sync(since=after_missed["next_batch"])
    assert bodies(timeline(later, room_id)) == ["seen"]
    # The new list arrives as account data, as any other.
    kinds = [e["type"] for e in later["account_data"]["events"]]
    assert "m.ignored_user_list" in kinds


async def test_invites_from_ignored_users_are_not_sent(node: Node, client: Client) -> None:
    alice = await client.register("alice")
    mallory = await client.register("mallory")
    bob = await client.register("bob")
    await ignore(alice, mallory)
    since = (await alice.sync())["next_batch"]
    from_mallory = await mallory.create_room(preset="private_chat")
    await mallory.invite(from_mallory, alice.user_id)
    from_bob = await bob.create_room(preset="private_chat")
    await bob.invite(from_bob, alice.user_id)

    invites = (await alice.sync(since=since))["rooms"].get("invite", {})
    assert list(invites) == [from_bob]
    assert list((await alice.sync())["rooms"].get("invite", {})) == [from_bob]


async def test_ignored_users_messages_do_not_notify(node: Node, client: Client) -> None:
    alice, bob, mallory, room_id = await _room(client)
    await ignore(alice, mallory)
    await mallory.send(room_id, "@alice look")
    await bob.send(room_id, "hi")
    await mallory.send(room_id, "again")

    def unread(sync: dict[str, Any], room: str) -> dict[str, int]:
        counts: dict[str, int] = sync["rooms"]["join"][room]["unread_notifications"]
        return counts

    assert unread(await alice.sync(), room_id)["notification_count"] == 1  # Bob's only
    assert unread(await bob.sync(), room_id)["notification_count"] == 2  # Mallory's two


async def test_a_malformed_list_ignores_no_one(node: Node, client: Client) -> None:
    alice, _bob, mallory, room_id = await _room(client)
    await alice.ok("PUT", ignore_path(alice), {"ignored_users": [mallory.user_id]})
    await mallory.send(room_id, "still here")
    assert "still here" in bodies(timeline(await alice.sync(), room_id))


async def test_the_list_is_read_after_a_restart(node: Node, client: Client) -> None:
    """The lists are cached; a node that has not cached one reads it from the database."""
    alice, _bob, mallory, room_id = await _room(client)
    await ignore(alice, mallory)
    await mallory.send(room_id, "spam")
    node.services.history.ignored._lists.clear()  # as after a restart
    assert "spam" not in bodies(timeline(await alice.sync(), room_id))
