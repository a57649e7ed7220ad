"""Reading relations: ``GET /v1/rooms/{roomId}/relations/{eventId}[/{relType}[/{eventType}]]``
(an event's children) and ``GET /v1/rooms/{roomId}/threads`` (a room's threads, the most
recently active first), each through :mod:`homeserver.rooms.visibility`: a user who may read
none of the room gets 403, a parent event they may not see 404 (as ``/event``), and only the
children and thread roots they may see are served, with their bundled aggregations.

Pagination tokens are stream positions, as those of ``/messages`` and ``/sync`` (which the
spec lets a client pass here): backwards from ``t12`` reads the events at or before 12,
forwards the events after it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from federation.redaction import redact
from homeserver.common.errors import not_found
from homeserver.rooms.history import HistoryService, parse_stream_token, stream_token
from homeserver.rooms.reader import RoomReader
from homeserver.storage import relations as relation_store


class RelationsService:
    def __init__(self, rooms: RoomReader, history: HistoryService) -> None:
        self.rooms = rooms
        self.history = history
        self.visibility = history.visibility

    async def relations(
        self,
        requester: tuple[str, str],
        room_id: str,
        event_id: str,
        *,
        rel_type: str | None,
        event_type: str | None,
        from_token: str | None,
        to_token: str | None,
        limit: int,
        backwards: bool,
        recurse: bool,
    ) -> dict[str, Any]:
        user_id = requester[0]
        reader = await self.visibility.reader(user_id, room_id)
        parent = await self.rooms.get_event(event_id)
        if (
            parent is None
            or parent.room_id != room_id
            or parent.outlier
            or not await self.visibility.events(user_id, reader.room, [parent])
        ):
            raise not_found("Event not found")
        start = parse_stream_token(from_token) if from_token else None
        bound = parse_stream_token(to_token) if to_token else None
        upto, after = (start, bound) if backwards else (bound, start)
        async with self.rooms.db.read() as conn:
            page = await relation_store.children(
                conn,
                parent,
                rel_type=rel_type,
                event_type=event_type,
                after=after,
                upto=reader.caps(upto),
                limit=limit + 1,
                backwards=backwards,
                recurse=recurse,
            )
        more = len(page) > limit
        page = page[:limit]
        visible = await self.visibility.events(user_id, reader.room, page)
        response: dict[str, Any] = {
            "chunk": await self.history.serialize(visible, requester, aggregate=True)
        }
        if more and page:
            last = page[-1].stream_ordering
            response["next_batch"] = stream_token(last - 1 if backwards else last)
        if from_token:
            response["prev_batch"] = from_token
        if recurse:
            response["recursion_depth"] = relation_store.RECURSION_DEPTH
        return response

    async def threads(
        self,
        requester: tuple[str, str],
        room_id: str,
        *,
        participated_only: bool,
        from_token: str | None,
        limit: int,
    ) -> dict[str, Any]:
        """The room's thread roots the user may see, by their latest reply, newest first
        (with ``participated_only``, those whose root or a reply the user sent)."""
        user_id = requester[0]
        reader = await self.visibility.reader(user_id, room_id)
        before = parse_stream_token(from_token) if from_token else None
        async with self.rooms.db.read() as conn:
            rows = await relation_store.threads(
                conn, room_id, before=before, upto=reader.caps(None), limit=limit + 1
            )
            more = len(rows) > limit
            rows = rows[:limit]
            mine: set[str] = set()
            if participated_only:
                mine = await relation_store.participated(conn, [r for r, _ in rows], user_id)
        found = await self.rooms.get_events(root for root, _ in rows)
        roots = [
            found[root]
            for root, _ in rows
            if root in found
            and found[root].room_id == room_id
            and not found[root].outlier
            and (not participated_only or root in mine or found[root].sender == user_id)
        ]
        visible = await self.visibility.events(user_id, reader.room, roots, with_ignored=True)
        # The spec: a root sent by an ignored user is served redacted (as a client that
        # aggregated the thread itself would show it).
        ignored = await self.visibility.ignored.of(user_id)
        served = [
            replace(e, pdu=redact(e.pdu, reader.room.version)) if e.sender in ignored else e
            for e in visible
        ]
        response: dict[str, Any] = {
            "chunk": await self.history.serialize(served, requester, aggregate=True)
        }
        if more and rows:
            response["next_batch"] = stream_token(rows[-1][1])
        return response
