"""``GET /_matrix/client/v1/room_summary/{roomIdOrAlias}`` (spec v1.15, MSC3266), as
Synapse's ``RoomSummaryHandler.get_room_summary`` answers it.

A room this node is in is summarised from its current state when the user may see it:
public, knockable or world-readable rooms, rooms the user is joined or invited to, and
restricted rooms the user could join. Otherwise the room is asked of the ``via`` servers
(or the alias's) with the federation ``/hierarchy`` and shown under the same rules. The
answer adds the caller's ``membership`` (``leave`` when they have none). Anything else is
404 ``M_NOT_FOUND``, so that a private room's name never leaks.
"""

from __future__ import annotations

from typing import Any

from homeserver.common.errors import MatrixError, not_found
from homeserver.rooms.handler import RoomHandler
from homeserver.rooms.hierarchy import HierarchyService
from homeserver.storage import rooms as room_store

NOT_FOUND = "Room not found or is not accessible"


class RoomSummaryService:
    def __init__(self, handler: RoomHandler, hierarchy: HierarchyService) -> None:
        self.handler = handler
        self.hierarchy = hierarchy
        self.summaries = hierarchy.summaries

    async def summary(self, user_id: str, room_id_or_alias: str, via: list[str]) -> dict[str, Any]:
        try:
            room_id, servers = await self.handler.resolve_room(room_id_or_alias)
        except MatrixError as e:  # an unknown alias says no more than an unknown room
            if e.status == 404:
                raise not_found(NOT_FOUND) from None
            raise
        local = await self.summaries.local_room(room_id)
        if local is not None:
            if not await self.summaries.visible_to_user(room_id, user_id):
                raise not_found(NOT_FOUND)
            entry = await self.summaries.summary(local)
        else:
            entry = await self._remote(user_id, room_id, [*via, *servers])
        entry = {k: v for k, v in entry.items() if k != "allowed_room_ids" or v}
        async with self.handler.rooms.db.read() as conn:
            membership = await room_store.get_membership(conn, room_id, user_id)
        entry["membership"] = membership.membership if membership is not None else "leave"
        return entry

    async def _remote(self, user_id: str, room_id: str, via: list[str]) -> dict[str, Any]:
        remote = self.hierarchy.remote
        if remote is None or not via:
            raise not_found(NOT_FOUND)
        found = await remote.hierarchy(room_id, via, True)
        if found is None or not await self.hierarchy.remote_visible(user_id, room_id, found.room):
            raise not_found(NOT_FOUND)
        return dict(found.room)
