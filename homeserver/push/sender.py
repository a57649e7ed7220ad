"""Sending push notifications: one background worker per http pusher (Synapse's model).

A worker reads its user's push actions after the pusher's ``last_stream_ordering`` (rows
that a read receipt deleted are never pushed), POSTs one notification per event to the
gateway and records its progress in the pusher's row, so a restart resumes where it
stopped.  A failure is retried with exponential backoff (1 s doubling to one hour); after
failing for a day a notification is given up, so a gateway that comes back is not flooded
with stale pushes.  Pushkeys the gateway reports as ``rejected`` delete their pusher.
Nothing here runs on the send path: :meth:`PusherPool.wake` only sets an event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from homeserver.common.clock import Clock
from homeserver.push.evaluator import outcome_of
from homeserver.push.gateway import GatewayClient, GatewayError, notification
from homeserver.push.ports import RoomReads
from homeserver.storage import push as store
from homeserver.storage.database import Database
from homeserver.storage.push import PushAction, Pusher

log = logging.getLogger(__name__)

INITIAL_BACKOFF_S = 1.0
MAX_BACKOFF_S = 3600.0
GIVE_UP_AFTER_MS = 24 * 3600 * 1000
BATCH = 50


class PusherPool:
    def __init__(
        self,
        db: Database,
        rooms: RoomReads,
        clock: Clock,
        gateway: GatewayClient,
        *,
        include_content: bool,
    ) -> None:
        self.db = db
        self.rooms = rooms
        self.clock = clock
        self.gateway = gateway
        self.include_content = include_content
        self._workers: dict[tuple[str, str, str], _Worker] = {}
        #: Seconds of the first retry (doubles per failure); tests may shorten it.
        self.initial_backoff_s = INITIAL_BACKOFF_S

    async def start(self) -> None:
        """Start a worker for every stored http pusher; each catches up on what is unsent."""
        async with self.db.read() as conn:
            found = await store.get_pushers(conn)
        for pusher in found:
            self.added(pusher)

    def added(self, pusher: Pusher) -> None:
        if pusher.kind != "http":
            return
        old = self._workers.pop(pusher.key, None)
        if old is not None:
            old.stop()
        worker = _Worker(self, pusher)
        self._workers[pusher.key] = worker
        worker.wake()

    def removed(self, key: tuple[str, str, str]) -> None:
        worker = self._workers.pop(key, None)
        if worker is not None:
            worker.stop()

    def wake(self, user_ids: set[str]) -> None:
        """New push actions for these users: their workers look for them."""
        for key, worker in self._workers.items():
            if key[0] in user_ids:
                worker.wake()

    async def close(self) -> None:
        workers = list(self._workers.values())
        self._workers.clear()
        for worker in workers:
            worker.stop()
        await asyncio.gather(*(w.stopped() for w in workers))
        await self.gateway.close()


class _Worker:
    def __init__(self, pool: PusherPool, pusher: Pusher) -> None:
        self.pool = pool
        self.pusher = pusher
        self.last = pusher.last_stream_ordering
        self.failing_since = pusher.failing_since
        self.backoff = pool.initial_backoff_s
        self._wake = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run())

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._task.cancel()

    async def stopped(self) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                if not await self._process():
                    break
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("pusher %s failed", self.pusher.key)
        # The pusher is gone: leave the pool (unless a new worker already took its place).
        if self.pool._workers.get(self.pusher.key) is self:
            del self.pool._workers[self.pusher.key]

    async def _process(self) -> bool:
        """Push everything unsent; False when the pusher no longer exists."""
        pool, user_id = self.pool, self.pusher.user_id
        while True:
            async with pool.db.read() as conn:
                current = await store.get_pusher(conn, *self.pusher.key)
                actions = await store.actions_after(conn, user_id, self.last, BATCH)
            if current is None:  # deleted (logout, another user took the pushkey)
                return False
            self.pusher = current
            if not actions:
                return True
            for action in actions:
                while not await self._send(action):
                    now = pool.clock.now_ms()
                    if self.failing_since is None:
                        self.failing_since = now
                        if not await self._save():
                            return False
                    if now - self.failing_since > GIVE_UP_AFTER_MS:
                        log.warning("giving up a push to %s for %s", self.pusher.key, action)
                        break
                    log.info("push to %s failed: retrying in %.0f s", self.pusher.key, self.backoff)
                    await asyncio.sleep(self.backoff)
                    self.backoff = min(self.backoff * 2, MAX_BACKOFF_S)
                self.last = action.stream_ordering
                self.failing_since = None
                self.backoff = pool.initial_backoff_s
                if not await self._save():
                    return False

    async def _save(self) -> bool:
        async with self.pool.db.write() as conn:
            return await store.update_pusher_progress(
                conn, self.pusher.key, self.last, self.failing_since
            )

    async def _send(self, action: PushAction) -> bool:
        """One notification; False to retry it later."""
        pool = self.pool
        event = await pool.rooms.get_event(action.event_id)
        if event is None or event.redacted_by is not None:
            return True  # gone or redacted: nothing to push
        async with pool.db.read() as conn:
            badge = await store.badge_count(conn, self.pusher.user_id)
        details = await self._room_details(event.room_id, event.sender)
        body = notification(
            self.pusher,
            event.pdu,
            event.event_id,
            user_id=self.pusher.user_id,
            tweaks=outcome_of(action.actions or ["notify"]).tweaks,
            badge=badge,
            include_content=pool.include_content,
            **details,
        )
        try:
            rejected = await pool.gateway.post(str(self.pusher.data.get("url", "")), body)
        except GatewayError as e:
            log.warning("push to %s failed: %s", self.pusher.key, e)
            return False
        if self.pusher.pushkey in rejected:
            log.info("gateway rejected pushkey of %s: deleting the pusher", self.pusher.key)
            async with pool.db.write() as conn:
                await store.delete_pusher(conn, *self.pusher.key)
        return True

    async def _room_details(self, room_id: str, sender: str) -> dict[str, Any]:
        rooms = self.pool.rooms
        room = await rooms.room(room_id)
        if room is None:
            return {}
        name = (await rooms.state_content(room, "m.room.name")).get("name")
        alias = (await rooms.state_content(room, "m.room.canonical_alias")).get("alias")
        member = await rooms.state_content(room, "m.room.member", sender)
        display = member.get("displayname")
        return {
            "room_name": name if isinstance(name, str) else None,
            "room_alias": alias if isinstance(alias, str) else None,
            "sender_display_name": display if isinstance(display, str) else None,
        }
