"""Incremental /sync asks in-memory change trackers before the database (storage/changes.py).

These tests check both halves: every kind of change still reaches the next incremental
sync (nothing is skipped that should not be), and a sync with nothing new, or with one
new message, runs only a few statements however many rooms the user is in.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from aiohttp import web
from sqlalchemy import event

from homeserver.config import RateLimit, load_config
from homeserver.node.app import build_services, make_app
from homeserver.storage import to_device as inbox
from homeserver.storage.changes import ChangeTracker, recording
from homeserver.storage.database import open_database
from tests.homeserver.client import User
from tests.homeserver.conftest import Node, running_node, stop_node

SMALL = json.dumps({"room": {"timeline": {"limit": 5}}})


def test_tracker_answers_may_have_changed_before_it_started() -> None:
    tracker = ChangeTracker(earliest=100)
    assert tracker.changed_since("!a", 99)  # before start-up: unknown, so maybe
    assert not tracker.changed_since("!a", 100)
    assert not tracker.anything_since(100)
    tracker.mark("!a", 105)
    tracker.mark("!a", 103)  # an older position never hides a newer one
    assert tracker.changed_since("!a", 104)
    assert not tracker.changed_since("!a", 105)
    assert not tracker.changed_since("!b", 101)
    assert tracker.any_changed_since(["!b", "!a"], 101)
    assert not tracker.any_changed_since(["!b"], 101)
    assert tracker.anything_since(104) and not tracker.anything_since(105)


async def test_stream_rows_outside_a_write_are_refused(db_url: str) -> None:
    db = await open_database(db_url)
    try:
        try:
            recording()
        except RuntimeError as e:
            assert "Database.write()" in str(e)
        else:
            raise AssertionError("recording() outside a write block must fail")
        async with db.write():
            assert recording() is db.changes
    finally:
        await db.close()


@contextmanager
def counting(node: Node) -> Iterator[list[str]]:
    statements: list[str] = []
    engine = node.services.rooms.db.engine.sync_engine

    def count(*args: Any) -> None:
        statements.append(args[2])

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


def joined(body: dict[str, Any], room_id: str) -> dict[str, Any]:
    room: dict[str, Any] = body.get("rooms", {}).get("join", {}).get(room_id, {})
    return room


async def two_users_in_rooms(node: Node, count: int) -> tuple[User, User, list[str]]:
    client = node.client()
    alice = await client.register("alice")
    bob = await client.register("bob")
    rooms = []
    for _ in range(count):
        room_id = await alice.create_room(preset="public_chat")
        await bob.join(room_id)
        rooms.append(room_id)
    return alice, bob, rooms


async def test_quiet_and_one_message_syncs_run_few_statements(node: Node) -> None:
    alice, bob, rooms = await two_users_in_rooms(node, 12)
    since = (await bob.sync(filter=SMALL))["next_batch"]
    # Twice: the first incremental sync may fill the caches (memberships, key counts).
    for _ in range(2):
        with counting(node) as statements:
            body = await bob.sync(since, filter=SMALL)
        assert "join" not in body.get("rooms", {})
    assert statements == [], statements  # nothing new: no query at all

    await alice.send(rooms[5], "hello")
    with counting(node) as statements:
        body = await bob.sync(since, filter=SMALL)
    events = joined(body, rooms[5])["timeline"]["events"]
    assert [e["content"]["body"] for e in events] == ["hello"]
    assert set(body["rooms"]["join"]) == {rooms[5]}
    # The room's new events, the user's receipt and unread counts: not per room of the user.
    assert len(statements) <= 4, statements
    await alice.client.close()
    await bob.client.close()


async def test_every_kind_of_change_reaches_the_next_sync(node: Node) -> None:
    alice, bob, rooms = await two_users_in_rooms(node, 3)
    room = rooms[1]
    since = (await bob.sync(filter=SMALL))["next_batch"]

    # Room state (a topic), a receipt, global and room account data, typing.
    await alice.ok("PUT", f"/_matrix/client/v3/rooms/{room}/state/m.room.topic", {"topic": "t"})
    body = await bob.sync(since, filter=SMALL)
    timeline = joined(body, room)["timeline"]["events"]
    assert [e["type"] for e in timeline] == ["m.room.topic"]
    since = body["next_batch"]

    event_id = timeline[0]["event_id"]
    await alice.ok("POST", f"/_matrix/client/v3/rooms/{room}/receipt/m.read/{event_id}", {})
    body = await bob.sync(since, filter=SMALL)
    receipts = [e for e in joined(body, room)["ephemeral"]["events"] if e["type"] == "m.receipt"]
    assert alice.user_id in receipts[0]["content"][event_id]["m.read"]
    since = body["next_batch"]

    await bob.ok("PUT", f"/_matrix/client/v3/user/{bob.user_id}/account_data/x.global", {"a": 1})
    await bob.ok(
        "PUT", f"/_matrix/client/v3/user/{bob.user_id}/rooms/{rooms[2]}/account_data/x.room", {}
    )
    body = await bob.sync(since, filter=SMALL)
    assert {"type": "x.global", "content": {"a": 1}} in body["account_data"]["events"]
    assert joined(body, rooms[2])["account_data"]["events"] == [{"type": "x.room", "content": {}}]
    since = body["next_batch"]

    # Leaving shows the room under "leave"; forgetting it hides it from include_leave syncs.
    await bob.ok("POST", f"/_matrix/client/v3/rooms/{rooms[0]}/leave", {})
    body = await bob.sync(since, filter=SMALL)
    assert rooms[0] in body["rooms"]["leave"]
    since = body["next_batch"]
    with_leave = json.dumps({"room": {"include_leave": True}})
    assert rooms[0] in (await bob.sync(filter=with_leave))["rooms"]["leave"]
    await bob.ok("POST", f"/_matrix/client/v3/rooms/{rooms[0]}/forget", {})
    assert rooms[0] not in (await bob.sync(filter=with_leave))["rooms"].get("leave", {})

    # A room joined again after ``since`` comes with all of its account data.
    new_room = await alice.create_room(preset="public_chat")
    await bob.join(new_room)
    await bob.ok(
        "PUT", f"/_matrix/client/v3/user/{bob.user_id}/rooms/{new_room}/account_data/x.pre", {}
    )
    await bob.ok("POST", f"/_matrix/client/v3/rooms/{new_room}/leave", {})
    since = (await bob.sync(since, filter=SMALL))["next_batch"]
    await bob.join(new_room)
    body = await bob.sync(since, filter=SMALL)
    assert joined(body, new_room)["account_data"]["events"] == [{"type": "x.pre", "content": {}}]
    await alice.client.close()
    await bob.client.close()


async def test_key_counts_and_to_device_follow_changes(node: Node) -> None:
    alice, bob, _ = await two_users_in_rooms(node, 1)
    since = (await bob.sync())["next_batch"]
    keys = {f"signed_curve25519:K{i}": {"key": f"k{i}"} for i in range(3)}
    await bob.ok("POST", "/_matrix/client/v3/keys/upload", {"one_time_keys": keys})
    body = await bob.sync(since)
    assert body["device_one_time_keys_count"]["signed_curve25519"] == 3
    since = body["next_batch"]

    claim = {"one_time_keys": {bob.user_id: {bob.device_id: "signed_curve25519"}}}
    await alice.ok("POST", "/_matrix/client/v3/keys/claim", claim)
    body = await bob.sync(since)
    assert body["device_one_time_keys_count"]["signed_curve25519"] == 2
    since = body["next_batch"]

    message = {"messages": {bob.user_id: {bob.device_id: {"n": 1}}}}
    await alice.ok("PUT", "/_matrix/client/v3/sendToDevice/x.test/t1", message)
    body = await bob.sync(since)
    assert body["to_device"]["events"] == [
        {"sender": alice.user_id, "type": "x.test", "content": {"n": 1}}
    ]
    since = body["next_batch"]
    # Acknowledged by the next sync: delivered once, and gone from the inbox.
    assert (await bob.sync(since))["to_device"]["events"] == []
    async with node.services.rooms.db.read() as conn:
        assert await inbox.to_device_messages(conn, bob.user_id, bob.device_id, 10**9) == []
    await alice.client.close()
    await bob.client.close()


async def restart(node: Node, db_url: str) -> tuple[Node, web.AppRunner]:
    """The node again from its directory and database, on the same port."""
    loaded = load_config(node.directory)
    config = dataclasses.replace(
        loaded, database=db_url, rate_limit=RateLimit(per_second=10_000, burst=10_000)
    )
    services = await build_services(config, fast_passwords=True)
    runner = web.AppRunner(make_app(services))
    await runner.setup()
    port = int(node.server_name.rsplit(":", 1)[1])
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return dataclasses.replace(node, services=services), runner


async def test_a_since_token_from_before_a_restart_still_sees_changes(
    tmp_path: Path, db_url: str
) -> None:
    async with running_node(tmp_path / "node", db_url) as node:
        alice, bob, rooms = await two_users_in_rooms(node, 2)
        since = (await bob.sync(filter=SMALL))["next_batch"]
        await alice.send(rooms[0], "before the restart")
    # The trackers start empty after a restart and must not hide the message sent before
    # it from a since token older than it.
    again, runner = await restart(node, db_url)
    try:
        body = await bob.sync(since, filter=SMALL)
        events = joined(body, rooms[0])["timeline"]["events"]
        assert [e["content"]["body"] for e in events] == ["before the restart"]
        # And what changes after the restart is tracked again.
        since = body["next_batch"]
        assert "join" not in (await bob.sync(since, filter=SMALL)).get("rooms", {})
    finally:
        await bob.client.close()
        await stop_node(again, runner)
