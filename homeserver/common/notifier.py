"""Wakes long-polling /sync requests when something they may care about happens.

A waiter registers *before* it re-checks for news, so a notification that lands between
its check and its wait is never lost.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Iterable, Iterator


class Notifier:
    def __init__(self) -> None:
        self._waiters: defaultdict[str, set[asyncio.Future[None]]] = defaultdict(set)

    @property
    def waiting(self) -> int:
        return sum(len(w) for w in self._waiters.values())

    def notify(self, user_ids: Iterable[str]) -> None:
        for user_id in set(user_ids):
            for future in self._waiters.pop(user_id, ()):
                if not future.done():
                    future.set_result(None)

    @contextlib.contextmanager
    def waiter(self, user_id: str) -> Iterator[asyncio.Future[None]]:
        """A future that completes when ``user_id`` is next notified."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters[user_id].add(future)
        try:
            yield future
        finally:
            waiters = self._waiters.get(user_id)
            if waiters is not None:
                waiters.discard(future)
                if not waiters:
                    del self._waiters[user_id]
            if not future.done():
                future.cancel()


async def wait_for(future: asyncio.Future[None], timeout_s: float) -> bool:
    """True when ``future`` completed within ``timeout_s``."""
    if timeout_s <= 0:
        return future.done()
    try:
        await asyncio.wait_for(asyncio.shield(future), timeout_s)
        return True
    except TimeoutError:
        return False
