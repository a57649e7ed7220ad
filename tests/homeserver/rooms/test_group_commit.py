"""Group commit of message events (homeserver/rooms/groupcommit.py): concurrent sends are
chained and committed in groups, the next group built while the one before is written;
a failed write fails only its own senders, and what was built on it is built again; a
state event is not starved by a stream of messages; a stopped drainer leaves no sender
waiting and no stream position in flight."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from typing import Any

import pytest

from homeserver.rooms.cache import RoomCache
from homeserver.rooms.hooks import HookWrite
from homeserver.storage import extremities as extremity_store
from homeserver.storage import txns as txn_store
from homeserver.storage.events import StoredEvent
from tests.homeserver.client import Client
from tests.homeserver.conftest import Node

MESSAGE = {"msgtype": "m.text", "body": "回覧"}


class Gate:
    """A hook that holds up the write of the first group it sees until released, and can
    make that write fail (a fault of the database, which cannot be caused for real)."""

    def __init__(self, *, fail: bool = False) -> None:
        self.fail = fail
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.held: list[str] = []
        self.writes = 0

    async def prepare(self, room: RoomCache, events: Sequence[StoredEvent]) -> HookWrite:
        ids = [e.event_id for e in events]

        async def run(conn: Any) -> None:
            self.writes += 1
            if self.held:
                return
            self.held = ids
            self.entered.set()
            await self.release.wait()
            if self.fail:
                raise RuntimeError("the disk is on fire")

        return HookWrite(run=run)


def txn(name: str) -> tuple[str, str]:
    return ("DEVICE", txn_store.txn_key("/send/m.room.message", name))


async def settle(condition: Any, steps: int = 1000) -> None:
    """Let other tasks run until ``condition()`` holds (a bounded number of turns)."""
    for _ in range(steps):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("did not happen")


async def settled_stream(node: Node) -> None:
    stream = node.services.db.stream
    for _ in range(500):
        if stream.current == stream._last:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("a stream position stayed in flight")


async def _room(node: Node, client: Client) -> tuple[str, str]:
    alice = await client.register("alice")
    room_id = await alice.create_room(preset="public_chat")
    return alice.user_id, room_id


async def _chain_is_whole(node: Node, room_id: str, event_ids: list[str]) -> None:
    """Every event's prev events are stored, and the room has one forward extremity."""
    rooms = node.services.rooms
    found = await rooms.get_events(event_ids)
    assert set(found) == set(event_ids)
    prevs = {p for e in found.values() for p in e.pdu["prev_events"]}
    stored_prevs = await rooms.get_events(prevs)
    assert set(stored_prevs) == prevs
    async with node.services.db.read() as conn:
        extremities = await extremity_store.get_forward_extremities(conn, room_id)
    room = await rooms.require_room(room_id)
    assert extremities == room.extremities
    assert len(extremities) == 1
    await settled_stream(node)


async def test_concurrent_sends_form_one_chain(node: Node, client: Client) -> None:
    sender, room_id = await _room(node, client)
    rooms = node.services.rooms
    room = await rooms.require_room(room_id)
    depth_before = room.depth
    ids = await asyncio.gather(
        *(
            rooms.send(room_id, sender, "m.room.message", MESSAGE, txn=txn(f"t{i}"))
            for i in range(60)
        )
    )
    assert len(set(ids)) == 60
    found = await rooms.get_events(ids)
    # One chain: sorted by depth, each event's only prev event is the one before it.
    chain = sorted(found.values(), key=lambda e: e.pdu["depth"])
    assert [e.pdu["depth"] for e in chain] == list(range(depth_before + 1, depth_before + 61))
    for before, after in itertools.pairwise(chain):
        assert after.pdu["prev_events"] == [before.event_id]
    # Stream order follows the chain.
    assert [e.stream_ordering for e in chain] == sorted(e.stream_ordering for e in chain)
    assert room.extremities == [chain[-1].event_id]
    await _chain_is_whole(node, room_id, list(ids))


async def test_next_group_is_built_while_one_is_written(node: Node, client: Client) -> None:
    sender, room_id = await _room(node, client)
    rooms = node.services.rooms
    gate = Gate()
    rooms.hooks.append(gate)
    first = asyncio.ensure_future(rooms.send(room_id, sender, "m.room.message", MESSAGE))
    await asyncio.wait_for(gate.entered.wait(), 10)
    # The first group's write is held: these queue, and are built meanwhile.
    later = [
        asyncio.ensure_future(rooms.send(room_id, sender, "m.room.message", MESSAGE))
        for _ in range(5)
    ]
    room = await rooms.require_room(room_id)
    # The next group is taken (and built) while the first is being written.
    await settle(lambda: room.pending == [])
    assert not any(f.done() for f in [first, *later])
    gate.release.set()
    ids = [await first, *(await asyncio.gather(*later))]
    found = await rooms.get_events(ids)
    assert found[ids[1]].pdu["prev_events"] == [ids[0]]
    await _chain_is_whole(node, room_id, ids)


async def test_failed_write_fails_its_senders_and_the_next_group_is_rebuilt(
    node: Node, client: Client
) -> None:
    sender, room_id = await _room(node, client)
    rooms = node.services.rooms
    gate = Gate(fail=True)
    rooms.hooks.append(gate)
    first = asyncio.ensure_future(
        rooms.send(room_id, sender, "m.room.message", MESSAGE, txn=txn("first"))
    )
    await asyncio.wait_for(gate.entered.wait(), 10)
    later = [
        asyncio.ensure_future(
            rooms.send(room_id, sender, "m.room.message", MESSAGE, txn=txn(f"later{i}"))
        )
        for i in range(5)
    ]
    room = await rooms.require_room(room_id)
    await settle(lambda: room.pending == [])  # taken: built on the write in flight
    gate.release.set()
    with pytest.raises(RuntimeError, match="disk is on fire"):
        await first
    ids = list(await asyncio.gather(*later))
    # The failed event is not stored; the group built on it was built again on the room
    # as it is (its first event's prev event exists).
    assert await rooms.get_event(gate.held[0]) is None
    assert gate.held[0] not in ids
    found = await rooms.get_events(ids)
    assert all(gate.held[0] not in e.pdu["prev_events"] for e in found.values())
    await _chain_is_whole(node, room_id, ids)
    # The failed transaction was not recorded: a retry creates the event now.
    again = await rooms.send(room_id, sender, "m.room.message", MESSAGE, txn=txn("first"))
    assert again != gate.held[0]
    assert await rooms.get_event(again) is not None


async def test_retry_of_a_transaction_in_flight_gets_its_event(node: Node, client: Client) -> None:
    sender, room_id = await _room(node, client)
    rooms = node.services.rooms
    gate = Gate()
    rooms.hooks.append(gate)
    first = asyncio.ensure_future(
        rooms.send(room_id, sender, "m.room.message", MESSAGE, txn=txn("same"))
    )
    await asyncio.wait_for(gate.entered.wait(), 10)
    retry = asyncio.ensure_future(
        rooms.send(room_id, sender, "m.room.message", MESSAGE, txn=txn("same"))
    )
    other = asyncio.ensure_future(
        rooms.send(room_id, sender, "m.room.message", MESSAGE, txn=txn("other"))
    )
    room = await rooms.require_room(room_id)
    await settle(lambda: room.pending == [])
    assert not retry.done(), "answered before the event was committed"
    gate.release.set()
    event_id = await first
    assert await retry == event_id
    await other
    async with node.services.db.read() as conn:
        known = await txn_store.txn_events(conn, [(sender, *txn("same"))])
    assert known == {(sender, *txn("same")): event_id}
    await _chain_is_whole(node, room_id, [event_id, await other])


async def test_a_state_event_is_not_starved_by_messages(node: Node, client: Client) -> None:
    sender, room_id = await _room(node, client)
    rooms = node.services.rooms
    stop = asyncio.Event()
    sent: list[str] = []

    async def keep_sending() -> None:
        while not stop.is_set():
            sent.append(await rooms.send(room_id, sender, "m.room.message", MESSAGE))

    senders = [asyncio.ensure_future(keep_sending()) for _ in range(10)]
    try:
        while len(sent) < 50:
            await asyncio.sleep(0.01)
        topic = await asyncio.wait_for(
            rooms.send(room_id, sender, "m.room.topic", {"topic": "防災"}, state_key=""), 10
        )
        # And the messages flow on after it.
        after = len(sent)
        while len(sent) < after + 50:
            await asyncio.sleep(0.01)
    finally:
        stop.set()
        await asyncio.gather(*senders)
    room = await rooms.require_room(room_id)
    assert room.state[("m.room.topic", "")] == topic
    await _chain_is_whole(node, room_id, [*sent, topic])


async def test_stopped_drainer_answers_everyone(node: Node, client: Client) -> None:
    sender, room_id = await _room(node, client)
    rooms = node.services.rooms
    gate = Gate()
    rooms.hooks.append(gate)
    waiting = [
        asyncio.ensure_future(rooms.send(room_id, sender, "m.room.message", MESSAGE))
        for _ in range(3)
    ]
    await asyncio.wait_for(gate.entered.wait(), 10)
    waiting += [
        asyncio.ensure_future(rooms.send(room_id, sender, "m.room.message", MESSAGE))
        for _ in range(3)
    ]
    room = await rooms.require_room(room_id)
    await settle(lambda: room.pending == [])
    assert room.drainer is not None
    room.drainer.cancel()
    results = await asyncio.wait_for(asyncio.gather(*waiting, return_exceptions=True), 10)
    assert all(isinstance(r, Exception) for r in results), results
    await settled_stream(node)
    # The room still works.
    rooms.hooks.remove(gate)
    event_id = await rooms.send(room_id, sender, "m.room.message", MESSAGE)
    await _chain_is_whole(node, room_id, [event_id])
