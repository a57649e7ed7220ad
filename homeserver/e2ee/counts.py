"""One-time key counts and unused fallback key types per device, cached for /sync.

Every /sync reports both, so reading them from the database each time costs two queries
per sync.  They change only when the device uploads keys, someone claims one, or the
device is deleted; those paths call :meth:`KeyCounts.invalidate` after their commit.

A reader remembers the device's version before it reads and keeps its answer only if
the version is unchanged afterwards, so an answer read while a change was committing is
never cached.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

from homeserver.storage import keys as store
from homeserver.storage.database import Database

#: Devices whose counts are kept; the least recently synced are dropped beyond it.
MAX_CACHED_DEVICES = 100_000

Device = tuple[str, str]


class KeyCounts:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._versions: dict[Device, int] = {}
        self._cached: OrderedDict[Device, tuple[int, dict[str, int], list[str]]] = OrderedDict()

    def invalidate(self, devices: Iterable[Device]) -> None:
        """Call after committing a change to the devices' one-time or fallback keys."""
        for device in devices:
            self._versions[device] = self._versions.get(device, 0) + 1
            self._cached.pop(device, None)

    async def get(self, user_id: str, device_id: str) -> tuple[dict[str, int], list[str]]:
        """(one-time key counts by algorithm, algorithms with an unused fallback key)."""
        device = (user_id, device_id)
        version = self._versions.get(device, 0)
        hit = self._cached.get(device)
        if hit is not None and hit[0] == version:
            self._cached.move_to_end(device)
            return dict(hit[1]), list(hit[2])
        async with self.db.read() as conn:
            counts = await store.one_time_key_counts(conn, user_id, device_id)
            unused = await store.unused_fallback_algorithms(conn, user_id, device_id)
        if self._versions.get(device, 0) == version:
            self._cached[device] = (version, dict(counts), list(unused))
            while len(self._cached) > MAX_CACHED_DEVICES:
                self._cached.popitem(last=False)
        return counts, unused
