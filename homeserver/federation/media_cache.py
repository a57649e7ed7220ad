"""The cache of other servers' media: leases, last access, eviction and purges.

Each cached media has a row in ``remote_media`` and a file under ``remote_content/`` (its
thumbnails under ``remote_thumbnails/``), both named by ``file_id``.  The cache is bounded:

- by size: after each new download a background sweep removes the least recently used
  media until the total is within ``remote_media_cache.max_size``;
- by age (optional): an hourly sweep removes media not accessed for
  ``remote_media_cache.lifetime`` (Synapse's ``media_retention.remote_media_lifetime``);
- on demand: the admin API's ``purge_media_cache`` (Synapse's) removes media not accessed
  since a time.

A file being served is *leased* (from the moment a request finds it until its response
is sent) and never removed meanwhile; a removal and a request for the same media take the
same per-media lock, so a request never finds a row whose file is going.  Removal deletes
the row first, then the files, so a crash leaves at worst orphan files, never a row
without its file.  Last access is written at most once a minute per media.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import weakref
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from homeserver.common.clock import Clock
from homeserver.config import RemoteMediaCache as Settings
from homeserver.storage import remote_cache
from homeserver.storage.database import Database
from homeserver.storage.remote_cache import RemoteMedia

log = logging.getLogger(__name__)

#: Last access is recorded at this granularity (one write per media per minute at most).
ACCESS_GRANULARITY_MS = 60_000
#: How often the age limit (and the size limit, in case) is applied.
SWEEP_INTERVAL_S = 3600.0
PAGE = 500


class RemoteMediaCache:
    def __init__(self, db: Database, clock: Clock, root: Path, settings: Settings) -> None:
        self.db = db
        self.clock = clock
        self.root = root
        self.max_size = settings.max_size
        self.lifetime_ms = settings.lifetime_ms
        self._locks: weakref.WeakValueDictionary[tuple[str, str], asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )
        self._in_use: Counter[str] = Counter()
        self._sweep: asyncio.Task[None] | None = None
        self._sweep_again = False
        self._periodic: asyncio.Task[None] | None = None

    # ------------------------------------------------------------- files and locks

    def content_path(self, file_id: str) -> Path:
        return self.root / "remote_content" / file_id[0:2] / file_id[2:4] / file_id

    def thumbnail_dir(self, file_id: str) -> Path:
        return self.root / "remote_thumbnails" / file_id[0:2] / file_id[2:4] / file_id

    def lock(self, server_name: str, media_id: str) -> asyncio.Lock:
        """The lock of one media: held to look it up, download it or remove it."""
        key = (server_name, media_id)
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        return lock

    def lease(self, file_id: str) -> Callable[[], None]:
        """Keep ``file_id`` until the returned function is called (once or more)."""
        self._in_use[file_id] += 1
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self._in_use[file_id] -= 1
                if self._in_use[file_id] <= 0:
                    del self._in_use[file_id]

        return release

    def in_use(self, file_id: str) -> bool:
        return self._in_use[file_id] > 0

    async def accessed(self, record: RemoteMedia) -> None:
        now = self.clock.now_ms()
        if now - record.last_access_ts >= ACCESS_GRANULARITY_MS:
            async with self.db.write() as conn:
                await remote_cache.touch_media(conn, record.server_name, record.media_id, now)

    # ------------------------------------------------------------- eviction

    def added(self) -> None:
        """A new file is cached: bring the cache back within its size in the background."""
        if self._sweep is not None and not self._sweep.done():
            self._sweep_again = True
            return
        self._sweep = asyncio.get_running_loop().create_task(self._sweep_size())

    async def settled(self) -> None:
        """Wait for the background sweep, if one runs (for tests and shutdown)."""
        while self._sweep is not None and not self._sweep.done():
            await asyncio.shield(self._sweep)

    async def _sweep_size(self) -> None:
        while True:
            self._sweep_again = False
            try:
                await self.enforce_size()
            except Exception:
                log.exception("cannot bring the remote media cache within its size")
            if not self._sweep_again:
                return

    async def enforce_size(self) -> int:
        """Remove least recently used media until the cache is within its size (media in
        use are passed over); how many were removed."""
        async with self.db.read() as conn:
            total = await remote_cache.total_size(conn)
        removed = 0
        after: remote_cache.Position | None = None
        while total > self.max_size:
            async with self.db.read() as conn:
                page = await remote_cache.least_recently_used(conn, after=after, limit=PAGE)
            if not page:
                break
            for record in page:
                if total <= self.max_size:
                    break
                if await self._remove(record, record.__eq__):
                    total -= record.size
                    removed += 1
            last = page[-1]
            after = (last.last_access_ts, last.server_name, last.media_id)
        if removed:
            log.info("removed %d cached remote media over the cache size", removed)
        return removed

    async def purge(self, before_ts: int) -> int:
        """Remove media not accessed since ``before_ts`` (ms) and not in use; how many."""
        removed = 0
        after: remote_cache.Position | None = None
        while True:
            async with self.db.read() as conn:
                page = await remote_cache.least_recently_used(
                    conn, after=after, accessed_before=before_ts, limit=PAGE
                )
            if not page:
                break
            for record in page:
                if await self._remove(record, lambda c: c.last_access_ts < before_ts):
                    removed += 1
            last = page[-1]
            after = (last.last_access_ts, last.server_name, last.media_id)
        if removed:
            log.info("removed %d cached remote media not accessed since %d", removed, before_ts)
        return removed

    async def _remove(self, record: RemoteMedia, still: Callable[[RemoteMedia], bool]) -> bool:
        """Remove one media if it is not in use and ``still(current row)`` holds (it was
        not accessed since it was chosen)."""
        async with self.lock(record.server_name, record.media_id):
            if self.in_use(record.file_id):
                return False
            async with self.db.write() as conn:
                current = await remote_cache.get_media(conn, record.server_name, record.media_id)
                if current is None or current.file_id != record.file_id or not still(current):
                    return False
                await remote_cache.delete_media(
                    conn, record.server_name, record.media_id, record.file_id
                )
            await asyncio.to_thread(self._remove_files, record.file_id)
        return True

    def _remove_files(self, file_id: str) -> None:
        try:
            self.content_path(file_id).unlink()
        except FileNotFoundError:
            pass
        except OSError:
            log.exception("cannot remove cached remote media file %s", file_id)
        shutil.rmtree(self.thumbnail_dir(file_id), ignore_errors=True)

    # ------------------------------------------------------------- lifecycle

    def start(self) -> None:
        if self._periodic is None:
            self._periodic = asyncio.get_running_loop().create_task(self._every_hour())

    async def sweep(self) -> int:
        """Apply the age limit (if configured) and the size limit; how many were removed."""
        removed = 0
        if self.lifetime_ms is not None:
            removed += await self.purge(self.clock.now_ms() - self.lifetime_ms)
        return removed + await self.enforce_size()

    async def _every_hour(self) -> None:
        while True:
            try:
                await self.sweep()
            except Exception:
                log.exception("remote media cache sweep failed")
            await asyncio.sleep(SWEEP_INTERVAL_S)

    async def close(self) -> None:
        for task in (self._periodic, self._sweep):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._periodic = self._sweep = None
