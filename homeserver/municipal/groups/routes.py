"""The groups admin API (server admins only; spec/consortium.md, "User groups"):

``POST /_kairan/admin/v1/groups``: ``{"consortium", "name", "topic"?, "rooms"?, "creator"?}``
makes a group (creator: the caller unless given); its JSON
``GET  /_kairan/admin/v1/groups``: ``{"groups": [...]}``, the groups this node made
``GET  /_kairan/admin/v1/groups/{space_id}``: one group
``POST /_kairan/admin/v1/groups/{space_id}/rooms``: ``{"name"}``, a new themed room
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from homeserver.common.errors import not_found
from homeserver.common.http import json_response, read_json
from homeserver.extensions import Registry
from homeserver.municipal.groups.service import GroupService

PATH = "/_kairan/admin/v1/groups"


def register_routes(registry: Registry, service: GroupService) -> None:
    async def create(request: web.Request, requester: Any) -> web.Response:
        body = await read_json(request)
        group = await service.create(
            body.get("consortium"), body.get("name"), topic=body.get("topic"),
            rooms=body.get("rooms"), creator=body.get("creator", requester.user_id),
        )  # fmt: skip
        return json_response(group)

    async def listing(request: web.Request, requester: Any) -> web.Response:
        return json_response({"groups": await service.groups()})

    async def one(request: web.Request, requester: Any) -> web.Response:
        space_id = request.match_info["space_id"]
        found = await service.groups(space_id)
        if not found:
            raise not_found(f"No group {space_id} on this node")
        return json_response(found[0])

    async def add_room(request: web.Request, requester: Any) -> web.Response:
        body = await read_json(request)
        return json_response(
            await service.add_room(request.match_info["space_id"], body.get("name"))
        )

    registry.add_admin_route("POST", PATH, create)
    registry.add_admin_route("GET", PATH, listing)
    registry.add_admin_route("GET", PATH + "/{space_id}", one)
    registry.add_admin_route("POST", PATH + "/{space_id}/rooms", add_room)
