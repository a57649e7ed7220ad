"""State resolution over stored events: loads what the engine needs and calls it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from federation import state as engine_state
from homeserver.rooms.cache import RoomCache, StateKey
from homeserver.rooms.service import RoomService
from homeserver.storage import events as event_store

StateMap = dict[StateKey, str]


class StateResolver:
    def __init__(self, rooms: RoomService) -> None:
        self.rooms = rooms

    async def load_closure(self, roots: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Every event reachable from ``roots`` through auth_events, as event ID -> PDU."""
        pdus: dict[str, dict[str, Any]] = {}
        frontier = set(roots)
        while frontier:
            found = await self.rooms.get_events(frontier)
            next_frontier: set[str] = set()
            for event_id, event in found.items():
                pdus[event_id] = event.pdu
                for auth_id in event.pdu.get("auth_events", []):
                    if isinstance(auth_id, str) and auth_id not in pdus and auth_id not in found:
                        next_frontier.add(auth_id)
            next_frontier -= set(pdus)
            # Events we do not have stay missing; the engine names them if it needs them.
            frontier = {e for e in next_frontier if e not in frontier}
            if not found:
                break
        return pdus

    async def resolve(
        self,
        room: RoomCache,
        state_sets: list[StateMap],
        extra: dict[str, dict[str, Any]] | None = None,
    ) -> StateMap:
        """The resolution of ``state_sets`` under the room's version.

        ``extra`` holds events not stored yet (an event being received) by ID.
        """
        distinct = [dict(s) for s in {tuple(sorted(s.items())): s for s in state_sets}.values()]
        if len(distinct) == 1:
            return distinct[0]
        if not distinct:
            return {}
        extra = extra or {}
        roots = {e for s in distinct for e in s.values() if e not in extra}
        for pdu in extra.values():
            roots.update(a for a in pdu.get("auth_events", []) if isinstance(a, str))
        events = await self.load_closure(roots)
        events.update(extra)
        if room.version.room_id_is_create_hash:
            create_id = "$" + room.room_id[1:]
            if create_id not in events:
                events.update(await self.load_closure([create_id]))
        async with self.rooms.db.read() as conn:
            rejected = await event_store.rejected_among(conn, list(events))
        return engine_state.resolve(room.version.identifier, distinct, events, rejected=rejected)
