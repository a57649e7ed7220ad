"""OpenID: POST /user/{userId}/openid/request_token (for widgets and integration managers)."""

from __future__ import annotations

from aiohttp import web

from homeserver.client_api.common import requester, services
from homeserver.common.errors import forbidden
from homeserver.common.http import json_response, read_json

routes = web.RouteTableDef()


@routes.post("/_matrix/client/v3/user/{user_id}/openid/request_token")
async def request_token(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    if request.match_info["user_id"] != who.user_id:
        raise forbidden("Cannot request tokens for other users.")
    await read_json(request, allow_empty=True)  # the spec's body is an empty object
    return json_response(await svc.openid.request_token(who.user_id))
