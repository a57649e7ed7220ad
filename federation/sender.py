"""Outbound federation: one persisted queue and one sending loop per destination.

PDUs and EDUs are written to the queue store before anything is sent, so a restart
loses nothing and a destination that was down receives every item it missed, in order.
Each destination has at most one transaction in flight, carrying at most 50 PDUs and
100 EDUs; failures back off exponentially (reset when the destination contacts us).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable
from typing import Any

from federation.client import (
    FederationClient,
    RefusedDestination,
    RemoteError,
    UnreachableError,
    federation_path,
)
from federation.ports import QueueStore

log = logging.getLogger(__name__)

MAX_PDUS = 50
MAX_EDUS = 100
MIN_BACKOFF_S = 0.5
MAX_BACKOFF_S = 300.0


class DestinationQueue:
    def __init__(self, sender: TransactionSender, destination: str) -> None:
        self.sender = sender
        self.destination = destination
        self.wake = asyncio.Event()
        self.retry_now = asyncio.Event()
        self.backoff_s = 0.0
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._run(), name=f"federation-send-{self.destination}")

    async def _run(self) -> None:
        while not self.sender.closing:
            try:
                if await self._step():
                    continue
            except Exception:
                # A failure of our own (the queue store, a bug) must not end the loop:
                # nothing would send to this destination until the next item is queued.
                log.exception("sending to %s failed", self.destination)
            self.backoff_s = min(MAX_BACKOFF_S, max(MIN_BACKOFF_S, self.backoff_s * 2))
            # New items do not cut the wait short; only the destination contacting us does.
            self.retry_now.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.retry_now.wait(), self.backoff_s)

    async def _step(self) -> bool:
        """Send one transaction of what is queued (or wait for something to be queued);
        False when the destination did not take it."""
        store = self.sender.store
        items = await store.pending(self.destination, MAX_PDUS, MAX_EDUS)
        if not items:
            self.wake.clear()
            # Re-check after clearing, so an enqueue between the two is not missed.
            items = await store.pending(self.destination, MAX_PDUS, MAX_EDUS)
            if not items:
                await self.wake.wait()
                return True
        if not await self._send(items):
            return False
        self.backoff_s = 0.0
        await store.remove(self.destination, [i.id for i in items])
        return True

    async def _send(self, items: list[Any]) -> bool:
        sender = self.sender
        txn_id = f"{sender.start_ms}_{sender.next_txn()}"
        body = {
            "origin": sender.client.server_name,
            "origin_server_ts": int(time.time() * 1000),
            "pdus": [i.payload for i in items if i.kind == "pdu"],
            "edus": [i.payload for i in items if i.kind == "edu"],
        }
        try:
            response = await sender.client.request(
                self.destination, "PUT", federation_path("v1", "send", txn_id), body=body
            )
        except RemoteError as e:
            if 400 <= e.status < 500 and e.status not in (401, 408, 429):
                # The destination refuses this transaction for good: drop it, don't loop.
                log.warning(
                    "%s refused transaction %s: %s; dropping it", self.destination, txn_id, e
                )
                return True
            log.info("transaction %s to %s failed: %s", txn_id, self.destination, e)
            return False
        except RefusedDestination as e:
            # Not a failure to retry: the policy says never (a member removed from the
            # consortium...).  The queued items go, and the log says so.
            log.warning("dropping %d queued items for %s: %s", len(items), self.destination, e)
            return True
        except UnreachableError as e:
            log.info("transaction %s to %s failed: %s", txn_id, self.destination, e)
            return False
        results = response.get("pdus", {}) if isinstance(response, dict) else {}
        if isinstance(results, dict):
            for event_id, result in results.items():
                if isinstance(result, dict) and result.get("error"):
                    log.info("%s rejected %s: %s", self.destination, event_id, result["error"])
        return True


class TransactionSender:
    def __init__(self, client: FederationClient, store: QueueStore) -> None:
        self.client = client
        self.store = store
        self.start_ms = int(time.time() * 1000)
        self._txn = 0
        self._queues: dict[str, DestinationQueue] = {}
        self.closing = False

    def next_txn(self) -> int:
        self._txn += 1
        return self._txn

    def _queue(self, destination: str) -> DestinationQueue:
        queue = self._queues.get(destination)
        if queue is None:
            queue = self._queues[destination] = DestinationQueue(self, destination)
        queue.start()
        return queue

    async def start(self) -> None:
        """Resume every destination that still has queued items (after a restart)."""
        for destination in await self.store.destinations():
            self._queue(destination).wake.set()

    async def send_pdu(self, pdu: dict[str, Any], destinations: Iterable[str]) -> None:
        await self._enqueue(destinations, "pdu", pdu)

    async def send_edu(
        self, edu_type: str, content: dict[str, Any], destinations: Iterable[str]
    ) -> None:
        await self._enqueue(destinations, "edu", {"edu_type": edu_type, "content": content})

    async def _enqueue(
        self, destinations: Iterable[str], kind: str, payload: dict[str, Any]
    ) -> None:
        targets = sorted({d for d in destinations if d != self.client.server_name})
        if not targets:
            return
        await self.store.enqueue(targets, kind, payload)
        for destination in targets:
            self._queue(destination).wake.set()

    def wake(self, destinations: Iterable[str]) -> None:
        """Items for these destinations were queued by someone else (in their transaction)."""
        for destination in destinations:
            if destination != self.client.server_name:
                self._queue(destination).wake.set()

    def destination_is_up(self, destination: str) -> None:
        """``destination`` just contacted us: retry its queue now instead of backing off."""
        queue = self._queues.get(destination)
        if queue is not None and queue.backoff_s:
            queue.backoff_s = 0.0
            queue.retry_now.set()

    def retry(self, destination: str) -> None:
        """Send what is queued for ``destination`` now, backing off or not (the peer policy
        changed: items it now refuses are dropped at once)."""
        queue = self._queues.get(destination)
        if queue is not None:
            queue.backoff_s = 0.0
            queue.retry_now.set()
            queue.wake.set()

    async def close(self) -> None:
        self.closing = True
        for queue in self._queues.values():
            queue.wake.set()
            queue.retry_now.set()
            if queue.task is not None:
                queue.task.cancel()
        await asyncio.gather(
            *(q.task for q in self._queues.values() if q.task), return_exceptions=True
        )
        await self.client.close()
