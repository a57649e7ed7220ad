"""Sliding sync's in-memory shortcuts (the user's room entries kept between requests, the
visibility of an event read from the state groups in memory) never outlive what they
were built from: each test warms them with requests first, then changes the user's
membership, ignore list or m.direct, or the room's history visibility, and checks that
the next request (on the warm connection and on a new one) shows no more than it may."""

from __future__ import annotations

from typing import Any

from tests.homeserver.client import Client, User
from tests.homeserver.sync.test_sliding_sync import body, ok


def bodies(entry: dict[str, Any]) -> list[Any]:
    return [e["content"].get("body") for e in entry.get("timeline", [])]


async def warm(user: User, conn_id: str, timeline_limit: int = 10) -> str:
    """Two requests on ``conn_id`` (the second incremental); the last pos."""
    request = {**body(timeline_limit=timeline_limit), "conn_id": conn_id}
    first = await ok(user, request)
    return str((await ok(user, request, first["pos"]))["pos"])


async def test_a_kick_after_warm_requests_hides_what_follows(client: Client) -> None:
    alice = await client.register("alice")
    bob = await client.register("bob")
    rooms = [await alice.create_room(preset="public_chat") for _ in range(3)]
    for room in rooms:
        await bob.join(room)
        await alice.send(room, "before")
    room = rooms[1]
    pos = await warm(bob, "list")
    await alice.ok("POST", f"/_matrix/client/v3/rooms/{room}/kick", {"user_id": bob.user_id})
    await alice.send(room, "after the kick")
    await alice.ok("PUT", f"/_matrix/client/v3/rooms/{room}/state/m.room.name", {"name": "new"})
    request = {**body(timeline_limit=10), "conn_id": "list"}
    incremental = await ok(bob, request, pos)
    entry = incremental["rooms"][room]
    assert entry["timeline"][-1]["content"]["membership"] == "leave"
    assert "after the kick" not in bodies(entry) and "name" not in entry
    # Nothing more of the room on that connection, however often asked.
    again = await ok(bob, request, incremental["pos"])
    assert "after the kick" not in str(again["rooms"].get(room, {}))
    # A new connection: the room is listed (a kick stays), up to the kick only.
    fresh = await ok(bob, {**body(timeline_limit=10), "conn_id": "fresh"})
    assert room in fresh["lists"]["all"]["ops"][0]["room_ids"]
    fresh_room = fresh["rooms"][room]
    assert "after the kick" not in str(fresh_room)
    # The name set after the kick is nowhere (looked for as a name: "new" as a substring
    # can stand in a random event ID).
    assert fresh_room.get("name") != "new"
    events = fresh_room.get("timeline", []) + fresh_room.get("required_state", [])
    assert [e for e in events if e["type"] == "m.room.name"] == []
    assert fresh["lists"]["all"]["count"] == 3


async def test_an_own_leave_after_warm_requests_drops_the_room(client: Client) -> None:
    alice = await client.register("alice")
    bob = await client.register("bob")
    rooms = [await alice.create_room(preset="public_chat") for _ in range(2)]
    for room in rooms:
        await bob.join(room)
    pos = await warm(bob, "list")
    await bob.ok("POST", f"/_matrix/client/v3/rooms/{rooms[0]}/leave", {})
    await alice.send(rooms[0], "after bob left")
    request = {**body(timeline_limit=10), "conn_id": "list"}
    incremental = await ok(bob, request, pos)
    # Shown once, right after the leave, up to it.
    assert incremental["rooms"][rooms[0]]["timeline"][-1]["content"]["membership"] == "leave"
    assert "after bob left" not in str(incremental)
    fresh = await ok(bob, {**body(timeline_limit=10), "conn_id": "fresh"})
    assert rooms[0] not in fresh["rooms"] and fresh["lists"]["all"]["count"] == 1


async def test_ignoring_the_inviter_after_warm_requests_hides_the_invite(client: Client) -> None:
    alice = await client.register("alice")
    bob = await client.register("bob")
    room = await alice.create_room(invite=[bob.user_id])
    await warm(bob, "list")
    assert room in (await ok(bob, body()))["rooms"]
    await bob.ok(
        "PUT",
        f"/_matrix/client/v3/user/{bob.user_id}/account_data/m.ignored_user_list",
        {"ignored_users": {alice.user_id: {}}},
    )
    listed = await ok(bob, body())
    assert room not in listed["rooms"] and listed["lists"]["all"]["count"] == 0


async def test_m_direct_after_warm_requests_marks_the_room(client: Client) -> None:
    alice = await client.register("alice")
    bob = await client.register("bob")
    room = await alice.create_room(preset="public_chat")
    await bob.join(room)
    await warm(bob, "list")
    assert "is_dm" not in (await ok(bob, body()))["rooms"][room]
    await bob.ok(
        "PUT",
        f"/_matrix/client/v3/user/{bob.user_id}/account_data/m.direct",
        {alice.user_id: [room]},
    )
    assert (await ok(bob, body()))["rooms"][room]["is_dm"] is True
    dms = {
        "lists": {
            "dm": {
                "ranges": [[0, 9]],
                "timeline_limit": 0,
                "required_state": [],
                "filters": {"is_dm": False},
            }
        }
    }
    assert (await ok(bob, dms))["lists"]["dm"]["count"] == 0


async def test_joined_history_stays_hidden_with_warm_state_groups(client: Client) -> None:
    """History visibility ``joined``: what came before bob's join stays hidden though the
    room's state groups are in memory (read by alice's requests first)."""
    alice = await client.register("alice")
    bob = await client.register("bob")
    room = await alice.create_room(preset="public_chat")
    await alice.ok(
        "PUT",
        f"/_matrix/client/v3/rooms/{room}/state/m.room.history_visibility",
        {"history_visibility": "joined"},
    )
    await alice.send(room, "secret before bob")
    await warm(alice, "alice")
    await bob.join(room)
    await alice.send(room, "after bob joined")
    entry = (await ok(bob, body(timeline_limit=10)))["rooms"][room]
    assert "after bob joined" in bodies(entry)
    assert "secret before bob" not in bodies(entry)
    # And shared again: history a member may see, from then on.
    await alice.ok(
        "PUT",
        f"/_matrix/client/v3/rooms/{room}/state/m.room.history_visibility",
        {"history_visibility": "shared"},
    )
    entry = (await ok(bob, {**body(timeline_limit=10), "conn_id": "again"}))["rooms"][room]
    assert "secret before bob" not in bodies(entry)


async def test_account_data_and_push_rules_changed_after_warm_requests(client: Client) -> None:
    """A new connection's first response after a change of the user's account data (a
    room's and global) and push rules has the new values, not those of earlier responses."""
    bob = await client.register("bob")
    room = await bob.create_room()
    extensions = {"extensions": {"account_data": {"enabled": True}}}
    request = {**body(), **extensions}

    def account_data(found: dict[str, Any]) -> tuple[Any, Any, Any]:
        data = found["extensions"]["account_data"]
        by_type = {e["type"]: e["content"] for e in data["global"]}
        rooms = {e["type"]: e["content"] for e in data.get("rooms", {}).get(room, [])}
        return by_type.get("org.example"), rooms.get("org.example.room"), by_type["m.push_rules"]

    base = f"/_matrix/client/v3/user/{bob.user_id}"
    await bob.ok("PUT", f"{base}/account_data/org.example", {"n": 1})
    await bob.ok("PUT", f"{base}/rooms/{room}/account_data/org.example.room", {"n": 1})
    for conn_id in ("a", "b"):
        found = account_data(await ok(bob, {**request, "conn_id": conn_id}))
        assert found[:2] == ({"n": 1}, {"n": 1})
    rule = {"actions": ["notify"], "pattern": "cheese"}
    await bob.ok("PUT", "/_matrix/client/v3/pushrules/global/content/cheese", rule)
    await bob.ok("PUT", f"{base}/account_data/org.example", {"n": 2})
    await bob.ok("PUT", f"{base}/rooms/{room}/account_data/org.example.room", {"n": 2})
    found = account_data(await ok(bob, {**request, "conn_id": "c"}))
    assert found[:2] == ({"n": 2}, {"n": 2})
    assert [r["rule_id"] for r in found[2]["global"]["content"]][:1] == ["cheese"]
    await bob.ok("DELETE", "/_matrix/client/v3/pushrules/global/content/cheese")
    rules = account_data(await ok(bob, {**request, "conn_id": "d"}))[2]
    assert "cheese" not in str(rules)
    listed = await bob.ok("GET", "/_matrix/client/v3/pushrules/")
    assert "cheese" not in str(listed)


async def test_a_read_receipt_after_warm_requests_clears_the_counts(client: Client) -> None:
    """The user's own receipts read by earlier responses: one sent since is taken (the
    counts drop to 0 and the receipts extension shows it), on a new connection and on
    the warm one."""
    alice = await client.register("alice")
    bob = await client.register("bob")
    room = await alice.create_room(preset="public_chat")
    await bob.join(room)
    request = {**body(), "extensions": {"receipts": {"enabled": True}}}
    pos = await warm(bob, "list")
    await alice.send(room, "one")
    last = await alice.send(room, "two")
    assert (await ok(bob, {**request, "conn_id": "a"}))["rooms"][room]["notification_count"] == 2
    await bob.ok("POST", f"/_matrix/client/v3/rooms/{room}/receipt/m.read/{last}", {})
    fresh = await ok(bob, {**request, "conn_id": "b"})
    assert fresh["rooms"][room]["notification_count"] == 0
    receipt = fresh["extensions"]["receipts"]["rooms"][room]["content"][last]
    assert bob.user_id in receipt["m.read"]
    warm_conn = await ok(bob, {**body(timeline_limit=10), "conn_id": "list"}, pos)
    assert warm_conn["rooms"][room]["notification_count"] == 0
