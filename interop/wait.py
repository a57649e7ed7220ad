"""Polling with a deadline: the suite never sleeps a fixed time and never times assertions."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import aiohttp

from interop.client import Client, JsonDict, MatrixError

T = TypeVar("T")


def default_timeout() -> float:
    """Seconds a scenario waits for federation to deliver (``KAIRAN_INTEROP_TIMEOUT``)."""
    return float(os.environ.get("KAIRAN_INTEROP_TIMEOUT", "60"))


class WaitTimeout(AssertionError):
    """The condition did not hold before the deadline."""


async def wait_until(
    check: Callable[[], Awaitable[T | None]],
    what: str,
    *,
    timeout: float | None = None,
    interval: float = 0.2,
) -> T:
    """Call ``check`` until it returns something truthy and return that.

    HTTP errors from the homeserver (a 403 before a join has arrived, a 404 for an event
    not yet received) count as "not yet".  Raises :class:`WaitTimeout` naming ``what``,
    the last value and the last error when ``timeout`` (default :func:`default_timeout`)
    passes first.
    """
    limit = default_timeout() if timeout is None else timeout
    deadline = time.monotonic() + limit
    last_value: object = None
    last_error: BaseException | None = None
    while True:
        try:
            value = await check()
        except (MatrixError, aiohttp.ClientError, TimeoutError) as e:
            last_error = e
        else:
            if value:
                return value
            last_value = value
        if time.monotonic() >= deadline:
            raise WaitTimeout(
                f"timed out after {limit:.0f}s waiting for {what}; "
                f"last value {last_value!r:.300}; last error {last_error!r:.300}"
            )
        await asyncio.sleep(interval)


class SyncWatcher:
    """Incremental ``/sync`` for one client: wait until a response satisfies a predicate."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.since: str | None = None
        self.last: JsonDict | None = None

    async def start(self) -> SyncWatcher:
        self.last = await self.client.sync(None, timeout_ms=0)
        self.since = self.last.get("next_batch")
        return self

    async def until(
        self,
        predicate: Callable[[JsonDict], bool],
        what: str,
        *,
        timeout: float | None = None,
    ) -> JsonDict:
        """Long-poll ``/sync`` (1 s at a time) until ``predicate(response)`` holds."""
        if self.last is not None and predicate(self.last):
            return self.last

        async def step() -> JsonDict | None:
            response = await self.client.sync(self.since, timeout_ms=1000)
            self.since = response.get("next_batch", self.since)
            self.last = response
            return response if predicate(response) else None

        return await wait_until(step, what, timeout=timeout, interval=0.0)
