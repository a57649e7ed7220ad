"""The node's rooms as read: cached events and each room's cached current state.

:class:`RoomReader` holds the caches (the database is the truth) and answers the reads;
:class:`~homeserver.rooms.service.RoomService`, which persists events, updates them.  It
is built before the services that RoomService tells about new events (push actions, the
federation outbox), so that they can read rooms without RoomService existing yet.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from federation import auth as engine_auth
from federation import room_versions
from federation.errors import AuthError
from homeserver.common.errors import forbidden, not_found
from homeserver.rooms.cache import EventCache, RoomCache, StateKey
from homeserver.storage import events as event_store
from homeserver.storage import extremities as extremity_store
from homeserver.storage import rooms as room_store
from homeserver.storage.database import Database
from homeserver.storage.events import StoredEvent
from homeserver.storage.state import StateStore


class RoomReader:
    def __init__(self, db: Database, state_store: StateStore) -> None:
        self.db = db
        self.state_store = state_store
        self.events = EventCache()
        self._rooms: dict[str, RoomCache] = {}

    async def get_events(self, event_ids: Iterable[str]) -> dict[str, StoredEvent]:
        found: dict[str, StoredEvent] = {}
        missing: list[str] = []
        for event_id in event_ids:
            cached = self.events.get(event_id)
            if cached is not None:
                found[event_id] = cached
            else:
                missing.append(event_id)
        if missing:
            async with self.db.read() as conn:
                loaded = await event_store.get_events(conn, missing)
            for event in loaded.values():
                self.events.put(event)
            found.update(loaded)
        return found

    async def get_event(self, event_id: str) -> StoredEvent | None:
        return (await self.get_events([event_id])).get(event_id)

    def cached(self, room_id: str) -> RoomCache | None:
        """The room if its state is cached (no database read), else None."""
        return self._rooms.get(room_id)

    def add_room(self, room: RoomCache) -> None:
        """Start caching a room (just created, or just joined over federation)."""
        self._rooms[room.room_id] = room

    async def room(self, room_id: str) -> RoomCache | None:
        """The cached current state of a room this node knows, or None."""
        cached = self._rooms.get(room_id)
        if cached is not None:
            return cached
        async with self.db.read() as conn:
            room = await room_store.get_room(conn, room_id)
            if room is None:
                return None
            state = await room_store.get_current_state(conn, room_id)
            extremities = await extremity_store.get_forward_extremities(conn, room_id)
            extremity_events = await event_store.get_events(conn, extremities)
            members = await room_store.members_of_room(conn, room_id)
        depth = max((e.pdu["depth"] for e in extremity_events.values()), default=0)
        groups = [e.state_group for e in extremity_events.values() if e.state_group is not None]
        cache = RoomCache(
            room_id=room_id,
            version=room_versions.get(room.room_version),
            state=state,
            state_group=max(groups) if groups else None,
            extremities=extremities,
            depth=depth,
            members={m.user_id: m.membership for m in members},
        )
        self._rooms.setdefault(room_id, cache)
        return self._rooms[room_id]

    async def require_room(self, room_id: str) -> RoomCache:
        room = await self.room(room_id)
        if room is None:
            raise not_found(f"Unknown room {room_id}")
        return room

    async def state_event(
        self, room_id: str, event_type: str, state_key: str
    ) -> StoredEvent | None:
        room = await self.require_room(room_id)
        event_id = room.state.get((event_type, state_key))
        return await self.get_event(event_id) if event_id else None

    async def state_content(
        self, room: RoomCache, event_type: str, state_key: str = ""
    ) -> dict[str, Any]:
        event_id = room.state.get((event_type, state_key))
        if event_id is None:
            return {}
        event = await self.get_event(event_id)
        content = event.pdu.get("content") if event else None
        return content if isinstance(content, dict) else {}

    async def current_state_events(self, room_id: str) -> list[StoredEvent]:
        room = await self.require_room(room_id)
        found = await self.get_events(room.state.values())
        return [found[e] for e in room.state.values() if e in found]

    async def power_state(self, room: RoomCache) -> dict[StateKey, dict[str, Any]]:
        """The room's create and power levels events (the auth state power is read from)."""
        keys = [k for k in (("m.room.create", ""), ("m.room.power_levels", "")) if k in room.state]
        found = await self.get_events(room.state[k] for k in keys)
        return {k: found[room.state[k]].pdu for k in keys if room.state[k] in found}

    async def state_at(self, event: StoredEvent) -> dict[StateKey, str]:
        async with self.db.read() as conn:
            return await self.state_store.get_state(conn, event.state_group)

    def membership(self, room: RoomCache, user_id: str) -> str | None:
        return room.members.get(user_id)

    async def joined_rooms(self, user_id: str) -> list[str]:
        """The IDs of the rooms the user is joined to, sorted."""
        async with self.db.read() as conn:
            found = await room_store.memberships_of_user(conn, user_id, ["join"])
        return sorted(m.room_id for m in found)

    async def rooms_with_state(self, event_type: str) -> list[str]:
        """The rooms whose current state has an event of ``event_type``, sorted."""
        async with self.db.read() as conn:
            return await room_store.rooms_with_state(conn, event_type)

    async def require_joined(self, room_id: str, user_id: str) -> RoomCache:
        room = await self.room(room_id)
        if room is None or room.members.get(user_id) != "join":
            raise forbidden(f"User {user_id} not in room {room_id}")
        return room


def joined_at_level(
    room: RoomCache, auth_state: dict[StateKey, dict[str, Any]], needed: int
) -> list[str]:
    """The room's joined users with at least power ``needed``, highest first, then by ID."""
    levels: list[tuple[float, str]] = []
    for user_id in room.joined():
        try:
            level = engine_auth.user_power_level(user_id, auth_state, room.version)
        except AuthError:
            continue
        if level >= needed:
            levels.append((-level, user_id))
    return [user_id for _, user_id in sorted(levels)]
