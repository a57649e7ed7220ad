"""Each room's unread notification and highlight counts of a user, kept per (user, room)
while nothing that changes them happened there: they change only with an event in the
room (a new push action, a redaction, a membership) or a receipt of the user's in it
(which also deletes the push actions up to it in the same transaction), and the change
trackers see both.  A count is stamped with the stream position read before its
inputs (the user's receipts included), so anything committed after it invalidates it."""

from __future__ import annotations

from collections.abc import Mapping

from homeserver.rooms.cache import RoomCache
from homeserver.rooms.reader import RoomReader
from homeserver.storage.database import Database
from homeserver.storage.userdata import Receipt
from homeserver.sync import counts

#: Counts by thread (``MAIN`` or a thread root's event ID): (notifications, highlights).
Threads = dict[str, tuple[int, int]]
#: (user, room) pairs kept in memory (all forgotten past this).
MAX_KEPT = 200_000


class UnreadCounts:
    def __init__(self, db: Database, rooms: RoomReader) -> None:
        self.db = db
        self.rooms = rooms
        #: (user ID, room ID) -> (stream position the inputs were read at, counts)
        self._known: dict[tuple[str, str], tuple[int, Threads]] = {}

    async def of(
        self,
        user_id: str,
        rooms: list[RoomCache],
        own: Mapping[str, list[Receipt]],
        read_at: int,
    ) -> dict[str, Threads]:
        """The counts of each room (rooms without any left out).  ``own``: the user's read
        receipts of those rooms; ``read_at``: a stream position no later than when they
        (and the rooms) were read."""
        changes = self.db.changes
        found: dict[str, Threads] = {}
        missing: list[RoomCache] = []
        for room in rooms:
            known = self._known.get((user_id, room.room_id))
            if (
                known is None
                or changes.room_events.changed_since(room.room_id, known[0])
                or changes.user_receipts.changed_since((room.room_id, user_id), known[0])
            ):
                missing.append(room)
            elif known[1]:
                found[room.room_id] = known[1]
        if not missing:
            return found
        read = await counts.unread(self.db, self.rooms, missing, user_id, own)
        if len(self._known) + len(missing) > MAX_KEPT:
            self._known.clear()
        for room in missing:
            self._known[(user_id, room.room_id)] = (read_at, read.get(room.room_id, {}))
        found.update(read)
        return found
