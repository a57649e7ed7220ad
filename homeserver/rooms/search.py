"""Server-side search (``POST /search``, category ``room_events``), as Synapse answers it.

The rooms searched are those the user is joined to (as Synapse: not the rooms they left),
narrowed by the filter's ``rooms`` and ``not_rooms``.  The index (storage/search.py)
gives candidates, most recent or best ranked first; each goes through the same visibility
rules as ``/messages`` (rooms/visibility.py: history visibility, membership at the event,
ignored users) before it is a result.  Candidates are read twice the limit at a time, at
most five times per request (as Synapse), and ``next_batch`` is an opaque token of where
the reading stopped: the last stream position looked at (``recent``) or how many ranked
candidates were looked at (``rank``), and the room of a group's token.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from homeserver.common.errors import MatrixError
from homeserver.rooms.history import HistoryService, stream_token
from homeserver.rooms.reader import RoomReader
from homeserver.rooms.visibility import Visibility
from homeserver.storage import events as event_store
from homeserver.storage import search as search_store
from homeserver.storage.events import StoredEvent
from homeserver.storage.search_text import ALL_KEYS, parse_query

#: The keys a search may name (``keys``).
SEARCH_KEYS = ALL_KEYS
#: Rounds of candidates read per request (Synapse: 5).
MAX_ROUNDS = 5
#: ``count`` is exact up to this many matches (the spec's "approximate count"): counting
#: them all would cost as much as reading them all.
COUNT_CAP = 1000


@dataclass(frozen=True)
class EventContext:
    before_limit: int = 5
    after_limit: int = 5
    include_profile: bool = False


@dataclass(frozen=True)
class SearchRequest:
    """``search_categories.room_events``, checked (client_api/search.py parses it)."""

    search_term: str
    keys: tuple[str, ...] = ALL_KEYS
    order_by: str = "rank"
    limit: int = 10
    rooms: tuple[str, ...] | None = None
    not_rooms: tuple[str, ...] = ()
    types: tuple[str, ...] | None = None
    not_types: tuple[str, ...] = ()
    senders: tuple[str, ...] | None = None
    not_senders: tuple[str, ...] = ()
    contains_url: bool | None = None
    event_context: EventContext | None = None
    include_state: bool = False
    group_by: tuple[str, ...] = ()
    next_batch: str | None = None


@dataclass(frozen=True)
class _Cursor:
    order_by: str
    #: recent: the stream position below which to go on; rank: the candidates looked at.
    position: int
    room_id: str | None = None

    def encode(self) -> str:
        raw = json.dumps([1, self.order_by, self.position, self.room_id or ""])
        return base64.urlsafe_b64encode(raw.encode("utf-8")).decode("ascii").rstrip("=")

    @classmethod
    def decode(cls, token: str, order_by: str) -> _Cursor:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            version, order, position, room_id = json.loads(raw)
        except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
            raise _bad_batch() from None
        if (
            version != 1
            or order != order_by
            or not isinstance(position, int)
            or isinstance(position, bool)
            or not isinstance(room_id, str)
            or (order == "rank" and position < 0)
        ):
            raise _bad_batch()
        return cls(order, position, room_id or None)


def _bad_batch() -> MatrixError:
    return MatrixError(400, "M_INVALID_PARAM", "Invalid next_batch (or another order_by)")


class SearchService:
    def __init__(self, rooms: RoomReader, visibility: Visibility, history: HistoryService) -> None:
        self.rooms = rooms
        self.visibility = visibility
        self.history = history

    async def search(self, user_id: str, device_id: str, req: SearchRequest) -> dict[str, Any]:
        cursor = _Cursor.decode(req.next_batch, req.order_by) if req.next_batch else None
        query = parse_query(req.search_term)
        rooms = await self._rooms(user_id, req, cursor)
        empty: dict[str, Any] = {"results": [], "count": 0, "highlights": list(query.highlights)}
        if query.empty or not rooms:
            return {"search_categories": {"room_events": empty}}
        where = search_store.SearchWhere(
            query, rooms, req.keys, req.types, req.not_types, req.senders, req.not_senders
        )
        async with self.rooms.db.read() as conn:
            total = await search_store.count(conn, where, COUNT_CAP)
        if total == 0:
            return {"search_categories": {"room_events": empty}}
        where = dataclasses.replace(where, dense=total >= COUNT_CAP)
        found, rank, next_cursor = await self._find(user_id, req, where, cursor)
        requester = (user_id, device_id)
        serialized = await self.history.serialize(found, requester)
        results = []
        for event, body in zip(found, serialized, strict=True):
            result: dict[str, Any] = {"rank": rank[event.event_id], "result": body}
            if req.event_context is not None:
                result["context"] = await self._context(user_id, requester, event, req)
            results.append(result)
        out: dict[str, Any] = {
            "results": results,
            "count": total,
            "highlights": list(query.highlights),
        }
        if next_cursor is not None:
            out["next_batch"] = next_cursor.encode()
        groups = self._groups(req, found, next_cursor)
        if groups:
            out["groups"] = groups
        if req.include_state and found:
            out["state"] = await self._state(user_id, {e.room_id for e in found})
        return {"search_categories": {"room_events": out}}

    async def _rooms(self, user_id: str, req: SearchRequest, cursor: _Cursor | None) -> list[str]:
        rooms = await self.rooms.joined_rooms(user_id)
        if req.rooms is not None:
            wanted = set(req.rooms)
            rooms = [r for r in rooms if r in wanted]
        if req.not_rooms:
            unwanted = set(req.not_rooms)
            rooms = [r for r in rooms if r not in unwanted]
        if cursor is not None and cursor.room_id is not None:
            rooms = [r for r in rooms if r == cursor.room_id]
        return rooms

    async def _find(
        self,
        user_id: str,
        req: SearchRequest,
        where: search_store.SearchWhere,
        cursor: _Cursor | None,
    ) -> tuple[list[StoredEvent], dict[str, float], _Cursor | None]:
        """The results the user may see, their ranks, and where a next page starts."""
        by_rank = req.order_by == "rank"
        position = cursor.position if cursor is not None else (0 if by_rank else None)
        room_id = cursor.room_id if cursor is not None else None
        found: list[StoredEvent] = []
        rank: dict[str, float] = {}
        more = True
        for _ in range(MAX_ROUNDS):
            batch_size = req.limit * 2
            page_where = where if by_rank else _before(where, position)
            offset = (position or 0) if by_rank else 0
            async with self.rooms.db.read() as conn:
                batch = await search_store.search(
                    conn, page_where, by_rank=by_rank, limit=batch_size, offset=offset
                )
            visible = await self._visible(user_id, req, [e for e, _ in batch])
            looked_at = 0
            for event, score in batch:
                looked_at += 1
                position = (position or 0) + 1 if by_rank else event.stream_ordering
                if event.event_id in visible:
                    found.append(event)
                    rank[event.event_id] = score
                    if len(found) == req.limit:
                        break
            more = len(batch) == batch_size or looked_at < len(batch)
            if len(found) == req.limit or not more:
                break
        next_cursor = None
        if more and position is not None:
            next_cursor = _Cursor(req.order_by, position, room_id)
        return found, rank, next_cursor

    async def _visible(
        self, user_id: str, req: SearchRequest, events: Sequence[StoredEvent]
    ) -> set[str]:
        """The IDs of those of ``events`` the user may see (and that the filter's
        ``contains_url`` keeps)."""
        by_room: dict[str, list[StoredEvent]] = {}
        for event in events:
            if req.contains_url is not None and req.contains_url != _has_url(event):
                continue
            by_room.setdefault(event.room_id, []).append(event)
        visible: set[str] = set()
        for room_id, room_events in by_room.items():
            room = await self.rooms.room(room_id)
            if room is None:
                continue
            # What decides visibility is the same for events alike in these (the state
            # after them, sender, type, state key): one is asked for all.
            alike: dict[tuple[Any, ...], list[StoredEvent]] = {}
            for event in room_events:
                key = (event.state_group, event.sender, event.type, event.state_key)
                alike.setdefault(key, []).append(event)
            shown = await self.visibility.events(user_id, room, [g[0] for g in alike.values()])
            for first in shown:
                key = (first.state_group, first.sender, first.type, first.state_key)
                visible.update(e.event_id for e in alike[key])
        return visible

    async def _context(
        self,
        user_id: str,
        requester: tuple[str, str],
        event: StoredEvent,
        req: SearchRequest,
    ) -> dict[str, Any]:
        """Events around a result, as ``/context`` gives them (and the senders' profiles
        as of the last event given, when asked)."""
        wanted = req.event_context
        assert wanted is not None
        reader = await self.visibility.reader(user_id, event.room_id)
        room = reader.room
        async with self.rooms.db.read() as conn:
            before = await event_store.room_events(
                conn, room.room_id, before=event.stream_ordering,
                limit=wanted.before_limit, backwards=True,
            ) if wanted.before_limit else []  # fmt: skip
            after = await event_store.room_events(
                conn, room.room_id, after=event.stream_ordering, upto=reader.caps(None),
                limit=wanted.after_limit, backwards=False,
            ) if wanted.after_limit else []  # fmt: skip
        before = await self.visibility.events(user_id, room, before)
        after = await self.visibility.events(user_id, room, after)
        context: dict[str, Any] = {
            "events_before": await self.history.serialize(before, requester),
            "events_after": await self.history.serialize(after, requester),
            "start": stream_token(
                (before[-1].stream_ordering if before else event.stream_ordering) - 1
            ),
            "end": stream_token(after[-1].stream_ordering if after else event.stream_ordering),
        }
        if wanted.include_profile:
            senders = {e.sender for e in (*before, event, *after)}
            state = await self.visibility.state_after(reader, after[-1] if after else event)
            members = await self.rooms.get_events(
                v for (t, k), v in state.items() if t == "m.room.member" and k in senders
            )
            context["profile_info"] = {
                str(m.state_key): _profile(m.pdu.get("content")) for m in members.values()
            }
        return context

    async def _state(self, user_id: str, room_ids: set[str]) -> dict[str, Any]:
        """The current state of each room (the user is joined to each)."""
        out: dict[str, Any] = {}
        for room_id in sorted(room_ids):
            reader = await self.visibility.reader(user_id, room_id)
            events = await self.visibility.state_events(await self.visibility.state_now(reader))
            out[room_id] = await self.history.serialize(events, None)
        return out

    @staticmethod
    def _groups(
        req: SearchRequest, found: Sequence[StoredEvent], cursor: _Cursor | None
    ) -> dict[str, Any]:
        groups: dict[str, Any] = {}
        for key in req.group_by:
            group: dict[str, dict[str, Any]] = {}
            for event in found:
                value = event.room_id if key == "room_id" else event.sender
                entry = group.setdefault(value, {"results": [], "order": len(group) + 1})
                entry["results"].append(event.event_id)
            if key == "room_id" and cursor is not None:
                for room_id, entry in group.items():
                    entry["next_batch"] = _Cursor(
                        cursor.order_by, cursor.position, room_id
                    ).encode()
            groups[key] = group
        return groups


def _before(where: search_store.SearchWhere, position: int | None) -> search_store.SearchWhere:
    return where if position is None else dataclasses.replace(where, before=position)


def _has_url(event: StoredEvent) -> bool:
    content = event.pdu.get("content")
    return isinstance(content, dict) and isinstance(content.get("url"), str)


def _profile(content: object) -> dict[str, str]:
    """A member event's display name and avatar, where they are of the right form."""
    out: dict[str, str] = {}
    if isinstance(content, dict):
        name, avatar = content.get("displayname"), content.get("avatar_url")
        if isinstance(name, str):
            out["displayname"] = name
        if isinstance(avatar, str) and avatar.startswith("mxc://"):
            out["avatar_url"] = avatar
    return out
