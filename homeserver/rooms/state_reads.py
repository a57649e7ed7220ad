"""A room's state and single events as a user reads them: ``/state``, ``/state/{type}/{key}``,
``/members``, ``/joined_members`` and ``/event``, each through
:mod:`homeserver.rooms.visibility` (what the user may see, up to where)."""

from __future__ import annotations

from typing import Any

from homeserver.common.errors import not_found
from homeserver.rooms.history import parse_stream_token
from homeserver.rooms.reader import RoomReader
from homeserver.rooms.visibility import Visibility
from homeserver.storage.events import StoredEvent


class RoomStateReads:
    def __init__(self, rooms: RoomReader, visibility: Visibility) -> None:
        self.rooms = rooms
        self.visibility = visibility

    async def state(self, user_id: str, room_id: str) -> list[StoredEvent]:
        """The room's state as the user may see it now (departed members: at their leave)."""
        reader = await self.visibility.reader(user_id, room_id)
        return await self.visibility.state_events(await self.visibility.state_now(reader))

    async def state_event(
        self, user_id: str, room_id: str, event_type: str, state_key: str
    ) -> StoredEvent:
        reader = await self.visibility.reader(user_id, room_id)
        state = await self.visibility.state_now(reader)
        event_id = state.get((event_type, state_key))
        event = await self.rooms.get_event(event_id) if event_id else None
        if event is None:
            raise not_found("Event not found")
        return event

    async def members(
        self,
        user_id: str,
        room_id: str,
        *,
        at: str | None,
        membership: str | None,
        not_membership: str | None,
    ) -> list[StoredEvent]:
        """The room's member events now or as of the token ``at``, no later than the user's
        leave, filtered by membership as the spec's ``/members`` says."""
        reader = await self.visibility.reader(user_id, room_id)
        if at is None:
            state = await self.visibility.state_now(reader)
        else:
            state = await self.visibility.state_at_position(reader, parse_stream_token(at))
        ids = {k: v for k, v in state.items() if k[0] == "m.room.member"}
        events = await self.visibility.state_events(ids)
        return [
            event
            for event in events
            if (current := event.pdu.get("content", {}).get("membership")) is not None
            and (membership is None or current == membership)
            and (not_membership is None or current != not_membership)
        ]

    async def joined_members(self, user_id: str, room_id: str) -> dict[str, dict[str, Any]]:
        """The joined members' profiles, for a user joined to the room (as Synapse: only a
        current member may ask)."""
        reader = await self.visibility.joined_reader(user_id, room_id)
        room = reader.room
        ids = {
            ("m.room.member", u): room.state[("m.room.member", u)]
            for u in room.joined()
            if ("m.room.member", u) in room.state
        }
        joined: dict[str, dict[str, Any]] = {}
        for event in await self.visibility.state_events(ids):
            content = event.pdu.get("content", {})
            # The spec types both as strings: leave out what is unset (or not a string).
            joined[event.state_key or ""] = {
                key: content[field]
                for key, field in (("display_name", "displayname"), ("avatar_url", "avatar_url"))
                if isinstance(content.get(field), str)
            }
        return joined

    async def event(self, user_id: str, room_id: str, event_id: str) -> StoredEvent:
        """One event of the room, if the user may see it (404 otherwise, as Synapse)."""
        reader = await self.visibility.reader(user_id, room_id)
        event = await self.rooms.get_event(event_id)
        if (
            event is None
            or event.room_id != room_id
            or not await self.visibility.events(user_id, reader.room, [event])
        ):
            raise not_found("Event not found")
        return event
