"""Periodic housekeeping of the node's tables.

- Client transaction IDs of sent events (``event_txn_ids``) are kept 24 hours, as Synapse
  keeps its ``event_txn_id`` rows: long enough for any retry of a request (clients retry
  within minutes; the in-memory cache of other idempotent requests keeps 30 minutes), and
  the table no longer grows with every message ever sent.  A retry after that creates a new
  event, and ``unsigned.transaction_id`` is no longer given for the old one, as in Synapse.
- Read notifications (``read_push_actions``, listed by ``/notifications`` as read) are kept
  30 days after they were read (Synapse keeps its push actions about a month).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from homeserver.common.clock import Clock
from homeserver.storage import push as push_store
from homeserver.storage import txns as txn_store
from homeserver.storage.database import Database

log = logging.getLogger(__name__)

TXN_LIFETIME_MS = 24 * 3600 * 1000
READ_LIFETIME_MS = 30 * 24 * 3600 * 1000
INTERVAL_S = 3600.0


class Housekeeping:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        self._task: asyncio.Task[None] | None = None

    async def run_once(self) -> int:
        """Delete what has expired; how many rows went."""
        now = self.clock.now_ms()
        async with self.db.write() as conn:
            removed = await txn_store.delete_txn_ids_before(conn, now - TXN_LIFETIME_MS)
            return removed + await push_store.delete_read_before(conn, now - READ_LIFETIME_MS)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._every_hour())

    async def _every_hour(self) -> None:
        while True:
            try:
                removed = await self.run_once()
                if removed:
                    log.info(
                        "deleted %d expired client transaction IDs and read notifications", removed
                    )
            except Exception:
                log.exception("housekeeping failed")
            await asyncio.sleep(INTERVAL_S)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
