"""The space hierarchy of the Client-Server API (``GET /_matrix/client/v1/rooms/{roomId}/
hierarchy``): a depth-first walk of ``m.space.child`` links, one page at a time.

The walk keeps a stack of rooms to visit (the next one last) and the set of rooms already
visited, so loops end and a room appears once. A room this node is in is summarised from
its own state; any other room from the ``/hierarchy`` of the servers its link names
(:class:`homeserver.rooms.ports.RemoteSpaces`, implemented in homeserver/federation/), or,
when it is no space (or the depth limit stops there), from the summary its parent's server
already gave. Each room is
shown only if the requester may see it (see :mod:`homeserver.rooms.summary`). A page
stops after ``limit`` rooms (at most 50); what is left is kept for five minutes under a
random ``next_batch`` token, valid only for the same user, room, ``suggested_only`` and
``max_depth``, as Synapse does.
"""

from __future__ import annotations

import logging
import secrets
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from homeserver.common.clock import Clock
from homeserver.common.errors import forbidden, invalid_param
from homeserver.rooms.ports import RemoteSpaces
from homeserver.rooms.summary import SPACE, RoomSummaries

log = logging.getLogger(__name__)

MAX_ROOMS_PER_PAGE = 50
SESSION_TTL_MS = 5 * 60 * 1000
MAX_SESSIONS = 10_000
#: Remote summaries a room may be shown with whatever the join rule says.
_OPEN_JOIN_RULES = ("public", "knock", "knock_restricted")


@dataclass(frozen=True)
class _Queued:
    room_id: str
    via: tuple[str, ...]
    depth: int = 0
    #: The summary the parent's server gave, used when this room needs no walk of its own.
    remote: dict[str, Any] | None = None


@dataclass(frozen=True)
class _Session:
    #: The request it continues: user, room, suggested_only and max_depth.
    asked: tuple[str, str, bool, int | None]
    queue: tuple[_Queued, ...]
    processed: frozenset[str]
    expires_ms: int


@dataclass
class _Visit:
    """What the walk learnt of one room: its summary for the client and its children."""

    room: dict[str, Any]
    children_state: list[dict[str, Any]]
    children: dict[str, dict[str, Any]] = field(default_factory=dict)
    inaccessible: frozenset[str] = frozenset()


class HierarchyService:
    def __init__(self, summaries: RoomSummaries, remote: RemoteSpaces | None, clock: Clock) -> None:
        self.summaries = summaries
        self.remote = remote
        self.clock = clock
        self._sessions: OrderedDict[str, _Session] = OrderedDict()

    async def hierarchy(
        self,
        user_id: str,
        room_id: str,
        *,
        suggested_only: bool = False,
        max_depth: int | None = None,
        limit: int | None = None,
        from_token: str | None = None,
    ) -> dict[str, Any]:
        root = await self.summaries.local_room(room_id)
        if root is None or not await self.summaries.visible_to_user(room_id, user_id):
            raise forbidden(f"User {user_id} cannot see room {room_id} (or it is unknown here)")
        if from_token is not None:
            session = self._session(from_token)
            if session.asked != (user_id, room_id, suggested_only, max_depth):
                raise invalid_param("from, suggested_only and max_depth do not match the token")
            queue, processed = list(session.queue), set(session.processed)
        else:
            queue, processed = [_Queued(room_id, ())], set()
        limit = min(limit or MAX_ROOMS_PER_PAGE, MAX_ROOMS_PER_PAGE)
        rooms: list[dict[str, Any]] = []
        while queue and len(rooms) < limit:
            entry = queue.pop()
            if entry.room_id in processed:
                continue
            processed.add(entry.room_id)
            visit = await self._visit(user_id, entry, suggested_only, max_depth)
            if visit is None:
                continue
            room = {k: v for k, v in visit.room.items() if k != "allowed_room_ids"}
            rooms.append({**room, "children_state": visit.children_state})
            if max_depth is not None and entry.depth >= max_depth:
                continue
            queue.extend(
                _Queued(
                    child["state_key"],
                    tuple(child["content"]["via"]),
                    entry.depth + 1,
                    visit.children.get(child["state_key"]),
                )
                for child in reversed(visit.children_state)
                if child["state_key"] not in visit.inaccessible
            )
        result: dict[str, Any] = {"rooms": rooms}
        if queue:
            result["next_batch"] = self._save(
                _Session(
                    (user_id, room_id, suggested_only, max_depth), tuple(queue),
                    frozenset(processed), self.clock.now_ms() + SESSION_TTL_MS,
                )
            )  # fmt: skip
        return result

    async def _visit(
        self, user_id: str, entry: _Queued, suggested_only: bool, max_depth: int | None
    ) -> _Visit | None:
        local = await self.summaries.local_room(entry.room_id)
        if local is not None:
            if not await self.summaries.visible_to_user(entry.room_id, user_id):
                return None
            is_space = await self.summaries.is_space(local)
            children = await self.summaries.children(local, suggested_only) if is_space else []
            return _Visit(await self.summaries.summary(local), children)
        at_limit = max_depth is not None and entry.depth >= max_depth
        visit: _Visit | None = None
        if entry.remote is not None and (entry.remote.get("room_type") != SPACE or at_limit):
            visit = _Visit(entry.remote, [])
        elif self.remote is not None:
            found = await self.remote.hierarchy(entry.room_id, entry.via, suggested_only)
            if found is not None:
                visit = _Visit(found.room, found.children_state, found.children, found.inaccessible)
        if visit is None or not await self.remote_visible(user_id, entry.room_id, visit.room):
            return None
        return visit

    async def remote_visible(self, user_id: str, room_id: str, room: dict[str, Any]) -> bool:
        """Whether the user may see a room summarised by another server: open rooms, rooms
        they could join through a room they are in, and rooms they are invited to."""
        if room.get("join_rule", "public") in _OPEN_JOIN_RULES or room.get("world_readable"):
            return True
        allowed = room.get("allowed_room_ids")
        if isinstance(allowed, list) and await self.summaries.user_joined_any(user_id, allowed):
            return True
        return await self.summaries.visible_to_user(room_id, user_id)

    # ------------------------------------------------------------- pagination

    def _session(self, token: str) -> _Session:
        session = self._sessions.get(token)
        if session is None or session.expires_ms <= self.clock.now_ms():
            raise invalid_param("Unknown pagination token")
        return session

    def _save(self, session: _Session) -> str:
        now = self.clock.now_ms()
        while self._sessions:
            oldest = next(iter(self._sessions.values()))
            if oldest.expires_ms > now and len(self._sessions) < MAX_SESSIONS:
                break
            self._sessions.popitem(last=False)
        token = secrets.token_urlsafe(16)
        self._sessions[token] = session
        return token
