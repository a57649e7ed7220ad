"""Sliding sync connections: ``pos`` survives a restart of the node (its state is in the
database), other positions are forgotten once one is used, unused ones expire."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import select, text

from homeserver.storage.schema import sliding_sync_positions
from homeserver.sync.sliding.connections import EXPIRY_MS
from tests.homeserver.client import Client, User
from tests.homeserver.conftest import Node, running_node, stop_node
from tests.homeserver.sync.test_sliding_sync import body, ok, ss
from tests.homeserver.sync.test_sync_changes import restart


async def test_pos_survives_a_restart(tmp_path: Path, db_url: str) -> None:
    async with running_node(tmp_path / "node", db_url) as node, node.client() as client:
        alice = await client.register("alice")
        rooms = [await alice.create_room(name=f"r{i}") for i in range(3)]
        first = await ok(alice, body(conn_id="room-list"))
        assert set(first["rooms"]) == set(rooms)
        await alice.send(rooms[0], "before the restart")
    again, runner = await restart(node, db_url)
    try:
        async with Client(node.base_url) as client:
            alice = User(client, alice.user_id, alice.token, alice.device_id)
            after = await ok(alice, body(conn_id="room-list"), first["pos"])
            assert list(after["rooms"]) == [rooms[0]]
            entry = after["rooms"][rooms[0]]
            assert "initial" not in entry
            assert [e["content"]["body"] for e in entry["timeline"]] == ["before the restart"]
            await alice.send(rooms[1], "after the restart")
            later = await ok(alice, body(conn_id="room-list"), after["pos"])
            assert list(later["rooms"]) == [rooms[1]]
            # Another conn_id of the same device does not know the position.
            other = await ss(alice, body(conn_id="encryption"), first["pos"])
            assert other.status == 400 and other.body["errcode"] == "M_UNKNOWN_POS"
    finally:
        await stop_node(again, runner)


async def test_other_positions_are_forgotten_once_one_is_used(client: Client) -> None:
    alice = await client.register("alice")
    rooms = [await alice.create_room() for _ in range(3)]
    first = await ok(alice, body(ranges=[[0, 0]]))
    # Widening the range sends new rooms: a new position.
    second = await ok(alice, body(ranges=[[0, 2]]), first["pos"])
    assert second["pos"].split("/")[0] != first["pos"].split("/")[0]
    assert len(second["rooms"]) == 2
    # Retrying from the first position works (the response may have been lost)...
    retry = await ok(alice, body(ranges=[[0, 2]]), first["pos"])
    assert len(retry["rooms"]) == 2
    # ...but once the client uses the newest, the others are gone.
    await ok(alice, body(ranges=[[0, 2]]), retry["pos"])
    gone = await ss(alice, body(ranges=[[0, 2]]), first["pos"])
    assert gone.status == 400 and gone.body["errcode"] == "M_UNKNOWN_POS"
    assert rooms


async def test_unused_positions_expire(
    client: Client, node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = await client.register("alice")
    await alice.create_room()
    first = await ok(alice, body())
    connections = node.services.sliding_sync.connections
    now = connections.clock.now_ms
    monkeypatch.setattr(connections.clock, "now_ms", lambda: now() + EXPIRY_MS + 1000)
    expired = await ss(alice, body(), first["pos"])
    assert expired.status == 400 and expired.body["errcode"] == "M_UNKNOWN_POS"
    # And it is gone from the database too (deleted as unused, just after the answer).
    await connections.flush()
    async with node.services.db.read() as conn:
        rows = (await conn.execute(select(sliding_sync_positions))).all()
    assert rows == []
    # Starting over works.
    assert (await ok(alice, body()))["rooms"]


async def test_a_new_connection_forgets_the_old_one(client: Client) -> None:
    alice = await client.register("alice")
    await alice.create_room()
    first = await ok(alice, body(conn_id="c"))
    await ok(alice, body(conn_id="c"))
    refused = await ss(alice, body(conn_id="c"), first["pos"])
    assert refused.status == 400 and refused.body["errcode"] == "M_UNKNOWN_POS"


async def test_pos_is_per_device(client: Client) -> None:
    alice = await client.register("alice")
    await alice.create_room()
    login = await client.ok(
        "POST",
        "/_matrix/client/v3/login",
        {
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": "alice"},
            "password": "correct horse",
        },
    )
    phone = User(client, alice.user_id, login["access_token"], login["device_id"])
    first = await ok(alice, body(conn_id="room-list"))
    refused = await ss(phone, body(conn_id="room-list"), first["pos"])
    assert refused.status == 400 and refused.body["errcode"] == "M_UNKNOWN_POS"
    # The phone's own connection with the same conn_id leaves the first one alone.
    await ok(phone, body(conn_id="room-list"))
    assert (await ok(alice, body(conn_id="room-list"), first["pos"]))["rooms"] == {}


async def test_long_poll_times_out_with_nothing(client: Client) -> None:
    alice = await client.register("alice")
    await alice.create_room()
    first = await ok(alice, body())
    started = asyncio.get_running_loop().time()
    quiet = await ok(alice, body(), first["pos"], timeout=600)
    assert asyncio.get_running_loop().time() - started >= 0.5
    assert quiet["rooms"] == {} and quiet["pos"] == first["pos"]


async def test_a_pos_that_is_not_one_is_an_invalid_stream_token(client: Client) -> None:
    """As Synapse: 400 M_UNKNOWN "Invalid stream token" for a malformed pos (a well-formed
    one this node does not know is M_UNKNOWN_POS, above); the real pos still works after."""
    alice = await client.register("alice")
    await alice.create_room()
    first = await ok(alice, body())
    for garbage in ("not-a-position", "12", "x/s1", "1/", "1/garbage", "9" * 30 + "/s1"):
        refused = await ss(alice, body(), garbage)
        assert refused.status == 400, garbage
        assert refused.body == {"errcode": "M_UNKNOWN", "error": "Invalid stream token"}
    assert "pos" in await ok(alice, body(), first["pos"])


async def test_a_position_is_usable_before_its_write_lands(client: Client, node: Node) -> None:
    """Positions are written just after the response: while another writer holds the
    positions' table, the connection's next requests are still answered (from memory),
    and the newest position reaches the database once the writer is done."""
    alice = await client.register("alice")
    rooms = [await alice.create_room(name=f"r{i}") for i in range(2)]
    db, connections = node.services.db, node.services.sliding_sync.connections
    first = await ok(alice, body(ranges=[[0, 0]], conn_id="held"))
    await connections.flush()
    holding, release = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        async with db.write() as conn:  # SQLite: the node's one writer
            if not db.is_sqlite:
                await conn.execute(text("LOCK TABLE sliding_sync_positions IN EXCLUSIVE MODE"))
            holding.set()
            await release.wait()

    holder = asyncio.create_task(hold())
    await holding.wait()
    try:
        # Widening the range sends the other room: the connection's state changes.
        wider = body(ranges=[[0, 1]], conn_id="held")
        second = await asyncio.wait_for(ok(alice, wider, first["pos"]), 10)
        assert set(second["rooms"]) == {rooms[0]}
        third = await asyncio.wait_for(ok(alice, wider, second["pos"]), 10)
        assert third["rooms"] == {}
        newest = int(second["pos"].split("/")[0])
        assert newest != int(first["pos"].split("/")[0])
        async with db.read() as conn:
            stored = set(await conn.scalars(select(sliding_sync_positions.c.position)))
        assert newest not in stored  # not written yet
    finally:
        release.set()
        await holder
    await connections.flush()
    async with db.read() as conn:
        stored = set(await conn.scalars(select(sliding_sync_positions.c.position)))
    assert stored == {newest}  # and the first forgotten, the client having used the newest
