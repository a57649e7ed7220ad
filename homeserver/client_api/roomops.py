"""Room operations beyond membership and messages: upgrades, knocking, room summaries,
``timestamp_to_event`` and reporting."""

from __future__ import annotations

from aiohttp import web

from homeserver.client_api.common import requester, services
from homeserver.common.http import json_response, read_json

routes = web.RouteTableDef()
R = "/_matrix/client/v3/rooms/{room_id}"


@routes.post(R + "/upgrade")
async def upgrade(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    body = await read_json(request)
    new_room = await svc.upgrades.upgrade(who.user_id, request.match_info["room_id"], body)
    return json_response({"replacement_room": new_room})
