"""A user's own read receipts (``m.read`` and ``m.read.private``) by room, as the
notification counts and the receipts extension of sliding sync read them: all of the
user's read at once the first time (one statement, however many rooms), then kept per
room while the tracker of the user's receipts there saw nothing new; other users'
receipts in a room leave the user's alone."""

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
        #: user ID -> the stream position all their read receipts were read at (a room
        #: not in ``_known`` then had none).
        self._complete: dict[str, int] = {}

    async def of(self, user_id: str, room_ids: Iterable[str]) -> dict[str, list[Receipt]]:
        """The user's read receipts in each room (rooms without any left out)."""
        changes = self.db.changes.user_receipts
        complete = self._complete.get(user_id)
        found: dict[str, list[Receipt]] = {}
        missing: list[str] = []
        for room_id in dict.fromkeys(room_ids):
            known = self._known.get((user_id, room_id))
            if known is None and complete is not None:
                known = (complete, [])
            if known is None or changes.changed_since((room_id, user_id), known[0]):
                missing.append(room_id)
            elif known[1]:
                found[room_id] = known[1]
        if not missing:
            return found
        # Every receipt written after this position marks its (room, user) past it.
        position = self.db.stream.current
        everything = complete is None
        async with self.db.read() as conn:
            read = await userdata_store.receipts_of_user(
                conn, user_id, None if everything else missing, READ_TYPES
            )
        if len(self._known) + len(read) + len(missing) > MAX_KEPT:
            self._known.clear()
            self._complete.clear()
            everything = False
        if everything:
            self._complete[user_id] = position
            for room_id, receipts in read.items():
                self._known[(user_id, room_id)] = (position, receipts)
        for room_id in missing:
            self._known[(user_id, room_id)] = (position, read.get(room_id, []))
            if room_id in read:
                found[room_id] = read[room_id]
        return found
