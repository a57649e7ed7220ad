"""Which servers may ask about a room: its server ACL, and whether a server is in it."""

from __future__ import annotations

from federation.identifiers import domain_of
from homeserver.common.errors import forbidden, not_found
from homeserver.federation.verify import server_allowed
from homeserver.rooms.cache import RoomCache
from homeserver.rooms.reader import RoomReader


def servers_in_room(room: RoomCache) -> set[str]:
    return {domain_of(u) for u, m in room.members.items() if m == "join"}


class RoomAccess:
    def __init__(self, rooms: RoomReader) -> None:
        self.rooms = rooms

    async def room(self, room_id: str) -> RoomCache:
        room = await self.rooms.room(room_id)
        if room is None:
            raise not_found(f"Unknown room {room_id}")
        return room

    async def acl_denies(self, room: RoomCache, origin: str) -> bool:
        acl = await self.rooms.state_content(room, "m.room.server_acl")
        return bool(acl) and not server_allowed(acl, origin)

    async def check_acl(self, room: RoomCache, origin: str) -> None:
        if await self.acl_denies(room, origin):
            raise forbidden(f"Server {origin} is denied by the room's server ACL")

    async def require_origin_in_room(self, room: RoomCache, origin: str) -> None:
        await self.check_acl(room, origin)
        if not any(domain_of(user) == origin for user in room.members):
            visibility = (await self.rooms.state_content(room, "m.room.history_visibility")).get(
                "history_visibility"
            )
            if visibility != "world_readable":
                raise forbidden(f"Server {origin} is not in room {room.room_id}")
