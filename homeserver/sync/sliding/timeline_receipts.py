"""The receipts (anyone's) on the timeline events of rooms a response sends from the start
(the receipts extension's part of a new room), kept per room with the events they were
read for while the receipt tracker saw nothing new there: a receipt row changes only by
a write that marks its room."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from homeserver.storage import sliding_sync as store
from homeserver.storage.database import Database
from homeserver.storage.userdata import Receipt

#: Rooms kept in memory (all forgotten past this).
MAX_KEPT = 100_000


class TimelineReceipts:
    def __init__(self, db: Database) -> None:
        self.db = db
        #: room ID -> (stream position read at, the event IDs, the receipts on them)
        self._known: dict[str, tuple[int, tuple[str, ...], list[Receipt]]] = {}

    async def of(self, events: Mapping[str, Sequence[str]]) -> list[Receipt]:
        """The receipts in each room (room ID -> its timeline's event IDs) on those events."""
        changes = self.db.changes.receipts
        found: list[Receipt] = []
        missing: dict[str, tuple[str, ...]] = {}
        for room_id, event_ids in events.items():
            key = tuple(event_ids)
            known = self._known.get(room_id)
            if known is None or known[1] != key or changes.changed_since(room_id, known[0]):
                missing[room_id] = key
            else:
                found += known[2]
        if not missing:
            return found
        # Every receipt written after this position marks its room past it.
        position = self.db.stream.current
        async with self.db.read() as conn:
            read = await store.receipts_on_events(
                conn, list(missing), [e for ids in missing.values() for e in ids]
            )
        by_room: dict[str, list[Receipt]] = {room_id: [] for room_id in missing}
        for receipt in read:
            if receipt.event_id in missing.get(receipt.room_id, ()):
                by_room[receipt.room_id].append(receipt)
        if len(self._known) + len(missing) > MAX_KEPT:
            self._known.clear()
        for room_id, key in missing.items():
            self._known[room_id] = (position, key, by_room[room_id])
            found += by_room[room_id]
        return found
