"""Serving a room's events and state to other servers (/event, /state, /state_ids,
/event_auth, /backfill, /get_missing_events), filtered by history visibility."""

from __future__ import annotations

import logging
from typing import Any

from federation import events as engine_events
from homeserver.rooms.cache import RoomCache
from homeserver.rooms.resolver import StateResolver
from homeserver.rooms.service import RoomService
from homeserver.storage.events import StoredEvent

log = logging.getLogger(__name__)


class HistoryServer:
    def __init__(self, rooms: RoomService, resolver: StateResolver) -> None:
        self.rooms = rooms
        self.resolver = resolver
        self.server_name = rooms.server_name

    async def event(self, origin: str, room: RoomCache, event: StoredEvent) -> dict[str, Any]:
        return {
            "origin": self.server_name,
            "origin_server_ts": self.rooms.clock.now_ms(),
            "pdus": await self._visible_to_server(origin, room, [event]),
        }

    async def state(self, event: StoredEvent, ids_only: bool) -> dict[str, Any]:
        """The state *before* the event, as Synapse gives it."""
        async with self.rooms.db.read() as conn:
            group = (
                await self.rooms.state_store.parent(conn, event.state_group)
                if event.state_key is not None and event.rejected_reason is None
                else event.state_group  # a rejected event's group is the state before it
            )
            state = await self.rooms.state_store.get_state(conn, group)
        state_ids = list(state.values())
        closure = await self.resolver.load_closure(state_ids)
        auth_ids = [e for e in closure if e not in set(state_ids)]
        if ids_only:
            return {"pdu_ids": state_ids, "auth_chain_ids": auth_ids}
        found = await self.rooms.get_events(state_ids)
        return {
            "pdus": [found[e].pdu for e in state_ids if e in found],
            "auth_chain": [closure[e] for e in auth_ids],
        }

    async def event_auth(self, event: StoredEvent) -> dict[str, Any]:
        closure = await self.resolver.load_closure(event.pdu.get("auth_events", []))
        return {"auth_chain": list(closure.values())}

    async def backfill(
        self, origin: str, room: RoomCache, event_ids: list[str], limit: int
    ) -> dict[str, Any]:
        result = await self._walk_back(
            room.room_id, event_ids, limit, stop=set(), include_start=True
        )
        return {
            "origin": self.server_name,
            "origin_server_ts": self.rooms.clock.now_ms(),
            "pdus": await self._visible_to_server(origin, room, result),
        }

    async def missing_events(
        self, origin: str, room: RoomCache, body: dict[str, Any]
    ) -> dict[str, Any]:
        earliest = {e for e in body.get("earliest_events", []) if isinstance(e, str)}
        latest = [e for e in body.get("latest_events", []) if isinstance(e, str)]
        limit = body.get("limit", 10)
        limit = max(1, min(limit if isinstance(limit, int) else 10, 100))
        events = await self._walk_back(
            room.room_id, latest, limit, stop=earliest, include_start=False
        )
        return {"events": list(reversed(await self._visible_to_server(origin, room, events)))}

    async def _walk_back(
        self, room_id: str, start: list[str], limit: int, *, stop: set[str], include_start: bool
    ) -> list[StoredEvent]:
        """Events reached from ``start`` through prev_events, newest (deepest) first."""
        result: list[StoredEvent] = []
        seen: set[str] = set(stop)
        frontier = list(start)
        if not include_start:
            found = await self.rooms.get_events(frontier)
            seen.update(frontier)
            frontier = [p for e in found.values() for p in e.pdu.get("prev_events", [])]
        while frontier and len(result) < limit:
            found = await self.rooms.get_events(e for e in frontier if e not in seen)
            seen.update(frontier)
            batch = sorted(
                (
                    e
                    for e in found.values()
                    if e.room_id == room_id and not e.outlier and not e.rejected_reason
                ),
                key=lambda e: -int(e.pdu.get("depth", 0)),
            )
            result.extend(batch[: limit - len(result)])
            frontier = [p for e in batch for p in e.pdu.get("prev_events", []) if p not in seen]
        return result

    async def _visible_to_server(
        self, origin: str, room: RoomCache, events: list[StoredEvent]
    ) -> list[dict[str, Any]]:
        """The PDUs as ``origin`` may see them: an event whose history visibility is
        ``joined`` (or ``invited``) while none of ``origin``'s users was joined (or
        invited) is served redacted, as Synapse filters events for servers (its
        CVE-2018-12291: history leaked over /get_missing_events)."""
        result: list[dict[str, Any]] = []
        for event in events:
            async with self.rooms.db.read() as conn:
                state = await self.rooms.state_store.get_state(conn, event.state_group)
            visibility = "shared"
            visibility_id = state.get(("m.room.history_visibility", ""))
            if visibility_id is not None:
                found = await self.rooms.get_event(visibility_id)
                content = found.pdu.get("content") if found else None
                if isinstance(content, dict) and isinstance(content.get("history_visibility"), str):
                    visibility = content["history_visibility"]
            allowed = {"joined": {"join"}, "invited": {"join", "invite"}}.get(visibility)
            if allowed is not None and not await self._server_had_member(origin, state, allowed):
                log.info("serving %s to %s redacted (history visibility)", event.event_id, origin)
                result.append(engine_events.redact(event.pdu, room.version))
            else:
                result.append(event.pdu)
        return result

    async def _server_had_member(
        self, origin: str, state: dict[tuple[str, str], str], memberships: set[str]
    ) -> bool:
        ids = [
            e
            for (t, k), e in state.items()
            if t == "m.room.member" and k.partition(":")[2] == origin
        ]
        found = await self.rooms.get_events(ids)
        return any(
            isinstance(e.pdu.get("content"), dict)
            and e.pdu["content"].get("membership") in memberships
            for e in found.values()
        )
