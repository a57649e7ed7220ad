"""Idempotent client requests kept in memory (Synapse's HttpTransactionCache).

The spec scopes a transaction ID to a device and an HTTP endpoint: a request with the same
path from the same device is a retransmission and gets the original answer.  Room events
keep their transactions in the database (``event_txn_ids``); requests whose effect is not
an event (``/sendToDevice``) use this cache: a retry that arrives while the first attempt is
still running waits for it and shares its answer; a failed attempt is forgotten, so that a
retry runs again (a transient error is not cached).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")

#: Synapse keeps transactions 30 to 60 minutes.
LIFETIME_S = 1800.0
MAX_ENTRIES = 100_000


class TransactionCache(Generic[T]):
    def __init__(self, lifetime_s: float = LIFETIME_S, max_entries: int = MAX_ENTRIES) -> None:
        self.lifetime_s = lifetime_s
        self.max_entries = max_entries
        self._entries: OrderedDict[Hashable, tuple[float, asyncio.Future[T]]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def _expire(self, now: float) -> None:
        while self._entries:
            oldest, (when, _) = next(iter(self._entries.items()))
            if now - when < self.lifetime_s and len(self._entries) < self.max_entries:
                break
            del self._entries[oldest]

    async def run(self, key: Hashable, fn: Callable[[], Awaitable[T]]) -> T:
        """``fn()``'s answer, computed once per ``key`` while the key is remembered."""
        now = time.monotonic()
        self._expire(now)
        entry = self._entries.get(key)
        future: asyncio.Future[T]
        if entry is None:
            future = asyncio.ensure_future(fn())
            self._entries[key] = (now, future)
            future.add_done_callback(lambda f: self._forget_failure(key, f))
        else:
            future = entry[1]
        # Shielded: a client that disconnects does not cancel the work others may wait for.
        return await asyncio.shield(future)

    def _forget_failure(self, key: Hashable, future: asyncio.Future[T]) -> None:
        if future.cancelled() or future.exception() is not None:
            entry = self._entries.get(key)
            if entry is not None and entry[1] is future:
                del self._entries[key]
