"""Presence: GET and PUT /presence/{userId}/status."""

from __future__ import annotations

from aiohttp import web

from homeserver.client_api.common import requester, services
from homeserver.common.errors import MatrixError, bad_json, forbidden
from homeserver.common.http import json_response, read_json

routes = web.RouteTableDef()
STATUS = "/_matrix/client/v3/presence/{user_id}/status"


@routes.get(STATUS)
async def get_status(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    return json_response(await svc.presence.get(who.user_id, request.match_info["user_id"]))


@routes.put(STATUS)
async def put_status(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    if request.match_info["user_id"] != who.user_id:
        raise forbidden("Can only set your own presence state")
    body = await read_json(request)
    presence, status_msg = body.get("presence"), body.get("status_msg")
    if not isinstance(presence, str):
        raise MatrixError(400, "M_MISSING_PARAM" if presence is None else "M_BAD_JSON",
                          "presence must be a string")  # fmt: skip
    if status_msg is not None and not isinstance(status_msg, str):
        raise bad_json("status_msg must be a string")
    await svc.presence.set_state(who.user_id, presence, status_msg)
    return json_response({})
