"""Group commit of local message events, pipelined.

Message events sent to one room at the same time queue up; one drainer task per room takes
up to :data:`MAX_GROUP` of them, builds and signs them as a chain (each event's only prev
event is the one before it), and stores them in one transaction: concurrent senders share
one commit (one fsync) instead of paying one each.  Each sender is answered only after the
commit that made its event durable.

The work is pipelined in two stages, so that the event loop and the database work at the
same time: while one group is being written (SQLite's connection thread or the PostgreSQL
server doing the inserts and the commit), the next group is built on the event loop,
chained on the last event of the group in flight, and the in-transaction hooks (push
actions) plan their rows for it.  Stream positions are taken when a group is built and
stay in flight until its commit, so /sync never answers past a row not yet visible.

The drainer holds the room's lock for the whole pipeline, so a state event sent meanwhile
cannot fork the chain; when someone waits for the lock (a state event, a received
federation transaction), the drainer stops building, writes what it has built, and lets
them go first.  If a write fails, its senders get the error and the group built on top of
it (whose first prev event now does not exist) is thrown away and built again.

What the pipeline holds (the queued events, groups, tip and stages) is in ``groups.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from homeserver.common.clock import Clock
from homeserver.common.errors import MatrixError
from homeserver.rooms.cache import EventCache, RoomCache
from homeserver.rooms.groups import MAX_PREV_EVENTS, Group, Pending, Stages, Tip, TxnKey
from homeserver.rooms.hooks import HookWrite, Outbox, finish_hooks
from homeserver.storage import driver
from homeserver.storage import events as event_store
from homeserver.storage import extremities as extremity_store
from homeserver.storage import txns as txn_store
from homeserver.storage.database import Database
from homeserver.storage.events import StoredEvent
from homeserver.storage.state import StateStore

log = logging.getLogger(__name__)


def _as_exception(e: BaseException) -> Exception:
    return e if isinstance(e, Exception) else RuntimeError("the server is stopping")


class EventWriter(Protocol):
    """What group commit needs of the room service that owns it."""

    db: Database
    clock: Clock
    state_store: StateStore
    events: EventCache

    async def build(
        self,
        room: RoomCache,
        sender: str,
        event_type: str,
        content: dict[str, Any],
        state_key: str | None,
        extra: Mapping[str, Any] | None,
        *,
        prev_events: list[str] | None = None,
        depth: int | None = None,
    ) -> tuple[str, dict[str, Any]]: ...

    async def prepare_hooks(
        self, room: RoomCache, events: Sequence[StoredEvent]
    ) -> list[HookWrite]: ...

    def after_persist(self, room: RoomCache, event: StoredEvent) -> None: ...


class GroupCommit:
    def __init__(self, rooms: EventWriter, outbox: Outbox | None) -> None:
        self.rooms = rooms
        self.outbox = outbox

    async def send(self, room: RoomCache, item: Pending) -> str:
        """Queue a message event; its event ID once it is committed."""
        room.pending.append(item)
        if room.drainer is None or room.drainer.done():
            room.drainer = asyncio.get_running_loop().create_task(self._drain(room))
        elif room.wakeup is not None and not room.wakeup.done():
            room.wakeup.set_result(None)
        return await item.future

    async def _drain(self, room: RoomCache) -> None:
        try:
            while room.pending:
                async with room.lock:
                    await self._pipeline(room)
        except BaseException as e:
            # Stopped (shutting down) or broken: nobody may wait for ever.
            self._fail(room.pending, _as_exception(e))
            room.pending = []
            raise

    async def _pipeline(self, room: RoomCache) -> None:
        """Build and write groups until the queue is empty or someone else waits for the
        room's lock (the first group is built regardless: the lock was taken in turn).

        One group is being written (``writing``) while the events that arrive meanwhile are
        built, as they arrive, into the next one (``ready``), chained on the first."""
        stages = Stages(Tip(room.extremities, room.depth))
        try:
            while True:
                room_left = stages.room_left()
                if room.pending and room_left > 0 and (stages.fresh or not room.lock.waiting):
                    built = await self._build_next(room, stages, room_left)
                    if not built or stages.writing is not None:
                        continue  # more may have arrived meanwhile
                if stages.writing is not None:
                    if not stages.writing[1].done():
                        if room.pending and not room.lock.waiting and room_left > 0:
                            continue
                        await self._write_or_arrival(room, stages.writing[1])
                        continue
                    if not await self._finish_writing(room, stages):
                        continue
                if stages.ready is None:
                    return
                self._start_writing(room, stages)
        except BaseException as e:
            self._abort(stages, _as_exception(e))
            raise

    async def _build_next(self, room: RoomCache, stages: Stages, room_left: int) -> bool:
        """Build the next events of the queue into the group being built; False (and their
        senders get the error) when that failed."""
        stages.fresh = False
        stages.batch, room.pending = room.pending[:room_left], room.pending[room_left:]
        try:
            group = await self._build(room, stages.batch, stages.tip, stages.in_flight())
        except Exception as e:
            log.exception("building a group of events failed in %s", room.room_id)
            self._fail(stages.batch, e)
            return False
        stages.tip = group.tip
        if stages.ready is None:
            stages.ready = group
        else:
            stages.ready.extend(group)
        return True

    async def _finish_writing(self, room: RoomCache, stages: Stages) -> bool:
        """Finish the write in flight (it is done).  False when it failed and the group
        built on it was put back in the queue, to be built again."""
        assert stages.writing is not None
        committed = await self._finish(room, *stages.writing)
        stages.writing = None
        if not committed and stages.ready is not None:
            stages.ready.abandon()
            self._requeue(room, stages.ready.items)
            stages.ready, stages.tip = None, Tip(room.extremities, room.depth)
            return False
        return True

    def _start_writing(self, room: RoomCache, stages: Stages) -> None:
        """Start writing the group built (nothing is being written)."""
        ready = stages.ready
        assert ready is not None
        stages.ready = None
        if ready.stored:
            task = asyncio.get_running_loop().create_task(self._write(room, ready))
            stages.writing = (ready, task)
        else:  # only retries, answered now that the events before are committed
            self._answer(ready)

    def _abort(self, stages: Stages, error: Exception) -> None:
        """Stopped or broken: every sender in the pipeline gets ``error``."""
        if stages.ready is not None:
            stages.ready.abandon()
            self._fail(stages.ready.items, error)
        if stages.writing is not None:
            stages.writing[1].cancel()
            self._fail(stages.writing[0].items, error)
        self._fail(stages.batch, error)

    async def _write_or_arrival(self, room: RoomCache, task: asyncio.Task[None]) -> None:
        """Wait until the write in flight ends or another event is queued."""
        room.wakeup = asyncio.get_running_loop().create_future()
        try:
            await asyncio.wait((task, room.wakeup), return_when=asyncio.FIRST_COMPLETED)
        finally:
            room.wakeup.cancel()
            room.wakeup = None

    async def _build(
        self,
        room: RoomCache,
        batch: list[Pending],
        tip: Tip,
        in_flight: dict[TxnKey, str],
    ) -> Group:
        """Build a group on ``tip``; ``in_flight``: the transactions of the groups built
        but not committed yet."""
        keys = [key for item in batch if (key := item.key) is not None]
        known: dict[TxnKey, str] = {}
        if keys:
            async with self.rooms.db.read() as conn:
                known = await txn_store.txn_events(conn, keys)
        first_prevs = tip.extremities[-MAX_PREV_EVENTS:]
        built, txns = await self._chain(room, batch, first_prevs, tip.depth, known, in_flight)
        positions = contextlib.ExitStack()
        stored = [
            StoredEvent(
                event_id,
                positions.enter_context(self.rooms.db.stream.allocate()),
                room.room_id,
                pdu,
                room.state_group,
            )
            for event_id, pdu in built
        ]
        if not stored:
            return Group(batch, [], {}, positions, [], [], tip)
        try:
            writes = await self.rooms.prepare_hooks(room, stored)
        except BaseException:
            positions.close()
            raise
        removed = set(first_prevs)
        after = [e for e in tip.extremities if e not in removed] + [stored[-1].event_id]
        depth = tip.depth + len(built)
        return Group(batch, stored, txns, positions, writes, first_prevs, Tip(after, depth))

    async def _chain(
        self,
        room: RoomCache,
        batch: list[Pending],
        prev: list[str],
        depth: int,
        known: dict[TxnKey, str],
        in_flight: dict[TxnKey, str],
    ) -> tuple[list[tuple[str, dict[str, Any]]], dict[TxnKey, str]]:
        """Build the batch's events on ``prev`` at ``depth``, each on the one before: the
        (event ID, PDU) built, and their transaction keys.  A retry (a transaction key
        ``known`` as committed, or in flight) gets the earlier event's ID; an event that
        cannot be built fails its own sender."""
        built: list[tuple[str, dict[str, Any]]] = []
        txns: dict[TxnKey, str] = {}
        for item in batch:
            # The key names the endpoint path (room and event type): a match is a retry.
            key = item.key
            if key is not None:
                earlier = known.get(key) or in_flight.get(key) or txns.get(key)
                if earlier is not None:
                    item.event_id = earlier
                    continue
            try:
                event_id, pdu = await self.rooms.build(
                    room, item.sender, item.event_type, item.content, None, item.extra,
                    prev_events=prev, depth=depth + 1,
                )  # fmt: skip
            except MatrixError as e:
                item.future.set_exception(e)
                continue
            item.event_id = event_id
            if key is not None:
                txns[key] = event_id
            built.append((event_id, pdu))
            prev, depth = [event_id], depth + 1
            # Let a write in flight take its next step (a few milliseconds of building in
            # one go would hold up each of its statements).
            await asyncio.sleep(0)
        return built, txns

    async def _write(self, room: RoomCache, group: Group) -> None:
        db = self.rooms.db
        try:
            async with db.write() as conn:
                # Everything in one trip to the database (see storage/driver.py).
                await driver.run(
                    conn,
                    [
                        *event_store.event_statements(group.stored),
                        txn_store.txn_statement(
                            [(*key, e) for key, e in group.txns.items()],
                            self.rooms.clock.now_ms(),
                        ),
                        *extremity_store.extremity_statements(
                            room.room_id, group.prev_events, [group.stored[-1].event_id]
                        ),
                        *(s for write in group.writes for s in write.statements),
                    ],
                )
                if self.outbox is not None:
                    for event in group.stored:
                        await self.outbox(conn, room, event.pdu)
                await finish_hooks(conn, group.writes)
                # Released inside the transaction: in flight until it commits.
                group.positions.close()
        except BaseException:
            group.positions.close()
            self.rooms.state_store.forget_cache()
            raise

    async def _finish(self, room: RoomCache, group: Group, task: asyncio.Task[None]) -> bool:
        """Wait for a group's write; update the room and answer its senders.  False if the
        write failed (its senders get the error)."""
        try:
            await task
        except Exception as e:
            log.exception("group commit failed in %s", room.room_id)
            self._fail(group.items, e)
            return False
        # The room's lock is held since the group was built on the room as it was.
        room.extremities, room.depth = group.tip.extremities, group.tip.depth
        for event in group.stored:
            self.rooms.events.put(event)
        for event in group.stored:
            self.rooms.after_persist(room, event)
        self._answer(group)
        return True

    @staticmethod
    def _answer(group: Group) -> None:
        for item in group.items:
            if not item.future.done() and item.event_id is not None:
                item.future.set_result(item.event_id)

    @staticmethod
    def _fail(items: list[Pending], error: Exception) -> None:
        for item in items:
            if not item.future.done():
                item.future.set_exception(error)

    @staticmethod
    def _requeue(room: RoomCache, items: list[Pending]) -> None:
        waiting = [item for item in items if not item.future.done()]
        for item in waiting:
            item.event_id = None
        room.pending[:0] = waiting
