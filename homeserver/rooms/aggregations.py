"""Bundled aggregations (the spec's "Aggregations of child events"): what
``unsigned.m.relations`` says of an event served to a client, read for a whole page of
events at once (a handful of statements per room of the page, never one per event).

- ``m.thread``: the thread's latest reply (itself with its edits and references), the
  number of replies and whether the user took part (sent the root or a reply);
- ``m.replace``: the most recent valid edit, whole (spec v1.7: the original keeps its
  content); edits by another sender, of another type, of a state event, redacted ones and
  those of a redacted original do not count;
- ``m.reference``: the IDs of the events that reference it.

State events, edits and annotations get none (as Synapse).  Replies from users the asker
ignores do not count, and nothing after a departed member's leave does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from homeserver.common.errors import MatrixError
from homeserver.rooms.cache import RoomCache
from homeserver.rooms.reader import RoomReader
from homeserver.rooms.visibility import Visibility
from homeserver.storage import relations as relation_store
from homeserver.storage.events import StoredEvent, relation_of

#: Events with these relations have no aggregations of their own.
_NO_BUNDLE = (relation_store.REPLACE, "m.annotation")


@dataclass
class Bundle:
    """An event's aggregations, before serialization."""

    #: (latest reply, count, the user took part)
    thread: tuple[StoredEvent, int, bool] | None = None
    replace: StoredEvent | None = None
    references: list[str] | None = None


class Aggregations:
    def __init__(self, rooms: RoomReader, visibility: Visibility) -> None:
        self.rooms = rooms
        self.visibility = visibility

    async def bundles(self, events: Sequence[StoredEvent], user_id: str) -> dict[str, Bundle]:
        """The bundles of ``events`` that have any, and of the latest replies of their
        threads (which the thread summaries carry), by event ID."""
        by_room: dict[str, list[StoredEvent]] = {}
        for event in events:
            relation = relation_of(event.pdu)
            if event.state_key is None and not (relation and relation[0] in _NO_BUNDLE):
                by_room.setdefault(event.room_id, []).append(event)
        found: dict[str, Bundle] = {}
        for room_id, room_events in by_room.items():
            try:
                reader = await self.visibility.reader(user_id, room_id)
            except MatrixError:
                continue
            found.update(
                await self._room_bundles(reader.room, room_events, user_id, reader.caps(None))
            )
        return found

    async def _room_bundles(
        self, room: RoomCache, events: list[StoredEvent], user_id: str, upto: int | None
    ) -> dict[str, Bundle]:
        ignored = await self.visibility.ignored.of(user_id)
        unique = {e.event_id: e for e in events}
        # Only an event without a relation may be a thread's root.
        roots = [e for e in unique.values() if relation_of(e.pdu) is None]
        found: dict[str, Bundle] = {}
        async with self.rooms.db.read() as conn:
            summaries = await relation_store.thread_summaries(
                conn, [e.event_id for e in roots], user_id, ignored=ignored, upto=upto
            )
            latest = {
                e.stream_ordering: e
                for e in await relation_store.events_at(
                    conn, [s.latest for s in summaries.values()]
                )
            }
        shown = {
            e.event_id for e in await self.visibility.events(user_id, room, list(latest.values()))
        }
        for root in roots:
            summary = summaries.get(root.event_id)
            reply = latest.get(summary.latest) if summary else None
            if summary is None or reply is None or reply.event_id not in shown:
                continue
            took_part = summary.participated or root.sender == user_id
            found[root.event_id] = Bundle(thread=(reply, summary.count, took_part))
            unique.setdefault(reply.event_id, reply)
        # An ignored user's event is served redacted (a thread root in /threads): its edits,
        # all theirs, would give its content away.
        unredacted = [
            i for i, e in unique.items() if e.redacted_by is None and e.sender not in ignored
        ]
        async with self.rooms.db.read() as conn:
            edits = await relation_store.edits(conn, unredacted, upto=upto)
            references = await relation_store.references(
                conn, list(unique), ignored=ignored, upto=upto
            )
        for event_id, candidates in edits.items():
            edit = next((e for e in candidates if _valid_edit(e)), None)
            if edit is not None:
                found.setdefault(event_id, Bundle()).replace = edit
        for event_id, children in references.items():
            found.setdefault(event_id, Bundle()).references = children
        return found


def _valid_edit(edit: StoredEvent) -> bool:
    """An edit carries its new content (``m.new_content``), which only an encrypted one
    hides from the server."""
    if edit.type == "m.room.encrypted":
        return True
    return isinstance(edit.pdu.get("content", {}).get("m.new_content"), dict)
