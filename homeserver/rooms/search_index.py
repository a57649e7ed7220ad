"""Keeping the search index (storage/search.py) with the events: a hook of the room
service, so an event's index rows are written in the transaction that stores it (an
accepted event is never left out, and none is indexed that was not stored).  Group commit
prepares the hook while the group before is being written, so the text's tokens are cut
off the path of the database's work.  Redactions take their event out of the index
(RoomService.apply_redaction); events stored before the index existed are indexed by
migration 0005."""

from __future__ import annotations

from collections.abc import Sequence

from homeserver.rooms.cache import RoomCache
from homeserver.rooms.hooks import HookWrite
from homeserver.storage import search as search_store
from homeserver.storage.database import Database
from homeserver.storage.events import StoredEvent


class SearchIndex:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def prepare(self, room: RoomCache, events: Sequence[StoredEvent]) -> HookWrite | None:
        rows = [row for e in events if (row := search_store.row_of(e)) is not None]
        if not rows:
            return None
        return HookWrite(statements=search_store.index_statements(self.db.is_sqlite, rows))
