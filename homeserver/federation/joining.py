"""Rooms this server is joining over federation right now.

Once a resident server has accepted our ``/send_join`` it sends us the room's new events,
and one may arrive before the join's answer (the room's state) is stored.  As Synapse
queues such events until the join is done, an event of a room being joined waits for the
join here, a bounded time, instead of being dropped as of an unknown room (a dropped
event is lost to this server until a later event names it as a prev event).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

#: How long a received event waits for the join of its room to be stored.
JOIN_WAIT_S = 30.0


class JoinsUnderway:
    def __init__(self) -> None:
        self._joins: dict[str, tuple[asyncio.Event, int]] = {}

    @contextlib.contextmanager
    def joining(self, room_id: str) -> Iterator[None]:
        """Mark ``room_id`` as being joined for the duration (two users may join at once)."""
        done, count = self._joins.get(room_id, (asyncio.Event(), 0))
        self._joins[room_id] = (done, count + 1)
        try:
            yield
        finally:
            done, count = self._joins[room_id]
            if count > 1:
                self._joins[room_id] = (done, count - 1)
            else:
                del self._joins[room_id]
                done.set()

    def underway(self, room_id: str) -> bool:
        return room_id in self._joins

    async def wait(self, room_id: str, timeout_s: float = JOIN_WAIT_S) -> None:
        """Until no join of ``room_id`` is underway (or ``timeout_s`` passes)."""
        entry = self._joins.get(room_id)
        if entry is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(entry[0].wait(), timeout_s)
