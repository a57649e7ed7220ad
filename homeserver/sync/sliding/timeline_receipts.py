"""The receipts (anyone's) on the timeline events of rooms a response sends from the start
(the receipts extension's part of a new room): every receipt of such a room is read once
and kept while the receipt tracker saw nothing new there (a receipt row changes only by
a write that marks its room), so a new event in a room needs no read of its receipts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from homeserver.storage import userdata as userdata_store
from homeserver.storage.database import Database
from homeserver.storage.userdata import Receipt

#: Receipts kept in memory (all forgotten past this).
MAX_KEPT = 200_000


class TimelineReceipts:
    def __init__(self, db: Database) -> None:
        self.db = db
        #: room ID -> (stream position read at, every receipt of the room)
        self._known: dict[str, tuple[int, list[Receipt]]] = {}
        self._kept = 0

    async def of(self, events: Mapping[str, Sequence[str]]) -> list[Receipt]:
        """The receipts in each room (room ID -> its timeline's event IDs) on those events."""
        changes = self.db.changes.receipts
        all_of: dict[str, list[Receipt]] = {}
        missing: list[str] = []
        for room_id in events:
            known = self._known.get(room_id)
            if known is None or changes.changed_since(room_id, known[0]):
                missing.append(room_id)
            else:
                all_of[room_id] = known[1]
        if missing:
            # Every receipt written after this position marks its room past it.
            position = self.db.stream.current
            async with self.db.read() as conn:
                read = await userdata_store.receipts_for_rooms(conn, missing, None, None)
            by_room: dict[str, list[Receipt]] = {room_id: [] for room_id in missing}
            for receipt in read:
                by_room[receipt.room_id].append(receipt)
            if self._kept + len(read) > MAX_KEPT:
                self._known.clear()
                self._kept = 0
            for room_id, receipts in by_room.items():
                old = self._known.get(room_id)
                self._kept += len(receipts) - (len(old[1]) if old else 0)
                self._known[room_id] = (position, receipts)
            all_of.update(by_room)
        found: list[Receipt] = []
        for room_id, event_ids in events.items():
            wanted = set(event_ids)
            found += [r for r in all_of[room_id] if r.event_id in wanted]
        return found
