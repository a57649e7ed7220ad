"""``GET /v1/mutual_rooms`` (Matrix 1.19): the rooms both the user and another have joined,
100 at a time in room ID order (``next_batch``: where the next batch starts)."""

from __future__ import annotations

from aiohttp import web

from federation.identifiers import is_valid_user_id
from homeserver.client_api.common import requester, services
from homeserver.common.errors import invalid_param, missing_param
from homeserver.common.http import json_response

routes = web.RouteTableDef()
BATCH = 100


@routes.get("/_matrix/client/v1/mutual_rooms")
async def mutual_rooms(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    other = request.query.get("user_id")
    if other is None:
        raise missing_param("Missing user_id")
    if not is_valid_user_id(other, historical=False) or other == who.user_id:
        raise invalid_param("The user ID provided was invalid")
    start = request.query.get("from", "0")
    if not start.isascii() or not start.isdigit():
        raise invalid_param("Invalid from token")
    shared = []
    for room_id in sorted(await svc.rooms.joined_rooms(who.user_id)):
        if other in await svc.room_state.joined_members(who.user_id, room_id):
            shared.append(room_id)
    offset = int(start)
    if offset > len(shared):
        raise invalid_param("Invalid from token")
    body: dict[str, object] = {"joined": shared[offset : offset + BATCH], "count": len(shared)}
    if offset + BATCH < len(shared):
        body["next_batch"] = str(offset + BATCH)
    return json_response(body)
