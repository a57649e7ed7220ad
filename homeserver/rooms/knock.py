"""Knocking (``POST /knock/{roomIdOrAlias}``): asking to be let into a room whose join rule
is ``knock`` (rooms 7+) or ``knock_restricted`` (rooms 10+).

In a room this node takes part in, the knock is a local event (the authorization rules
refuse it under any other join rule, and to a banned or joined user: 403). Otherwise it
goes through another server (``/make_knock`` and ``/send_knock``): the ``via`` servers,
those of the alias, then the room ID's. The knock then shows in the user's /sync
``knock`` section with the room's stripped state.
"""

from __future__ import annotations

from federation.identifiers import domain_of
from homeserver.common.errors import forbidden, not_found
from homeserver.rooms.handler import RoomHandler
from homeserver.rooms.ports import RemoteKnocks


class Knocks:
    def __init__(self, handler: RoomHandler, remote: RemoteKnocks | None) -> None:
        self.handler = handler
        self.rooms = handler.rooms
        self.remote = remote
        self.server_name = handler.server_name

    async def knock(
        self, user_id: str, room_id_or_alias: str, reason: str | None, via: list[str]
    ) -> str:
        room_id, servers = await self.handler.resolve_room(room_id_or_alias)
        room = await self.rooms.room(room_id)
        content = await self.handler.profile_content(user_id, "knock")
        if reason:
            content["reason"] = reason
        joined_servers = (
            {domain_of(u) for u, m in room.members.items() if m == "join"} if room else set()
        )
        if room is not None and (
            self.server_name in joined_servers or not joined_servers or self.remote is None
        ):
            current = room.members.get(user_id)
            if current == "join":
                raise forbidden("You are already in the room")
            if current == "ban":
                raise forbidden("You are banned from the room")
            await self.rooms.send(room_id, user_id, "m.room.member", content, state_key=user_id)
            return room_id
        if self.remote is None:
            raise not_found(f"No known servers for room {room_id}")
        candidates = [*via, *servers, *sorted(joined_servers)]
        if ":" in room_id:
            candidates.append(domain_of(room_id))
        await self.remote.knock(user_id, room_id, candidates, content)
        return room_id
