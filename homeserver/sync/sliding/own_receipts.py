"""A user's own read receipts (``m.read`` and ``m.read.private``) by room, as the
notification counts and the receipts extension of sliding sync read them: kept per room
while the receipt tracker saw nothing new in it, so that the rooms of a response are read
once for both, and not at all when nothing moved."""

from __future__ import annotations

from collections.abc import Iterable

from homeserver.storage import userdata as userdata_store
from homeserver.storage.database import Database
from homeserver.storage.userdata import Receipt

READ_TYPES = ("m.read", "m.read.private")
#: (user, room) pairs kept in memory (all forgotten past this).
MAX_KEPT = 200_000


class OwnReceipts:
    def __init__(self, db: Database) -> None:
        self.db = db
        #: (user ID, room ID) -> (stream position read at, the user's receipts there).
        self._known: dict[tuple[str, str], tuple[int, list[Receipt]]] = {}

    async def of(self, user_id: str, room_ids: Iterable[str]) -> dict[str, list[Receipt]]:
        """The user's read receipts in each room (rooms without any left out)."""
        changes = self.db.changes.receipts
        found: dict[str, list[Receipt]] = {}
        missing: list[str] = []
        for room_id in dict.fromkeys(room_ids):
            known = self._known.get((user_id, room_id))
            if known is None or changes.changed_since(room_id, known[0]):
                missing.append(room_id)
            elif known[1]:
                found[room_id] = known[1]
        if not missing:
            return found
        # Every receipt written after this position marks its room past it.
        position = self.db.stream.current
        async with self.db.read() as conn:
            read = await userdata_store.receipts_of_user(conn, user_id, missing, READ_TYPES)
        if len(self._known) + len(missing) > MAX_KEPT:
            self._known.clear()
        for room_id in missing:
            self._known[(user_id, room_id)] = (position, read.get(room_id, []))
        found.update(read)
        return found
