"""VoIP: GET /voip/turnServer (the TURN servers and credentials for calls)."""

from __future__ import annotations

from aiohttp import web

from homeserver.accounts.turn import turn_credentials
from homeserver.client_api.common import requester, services
from homeserver.common.http import json_response

routes = web.RouteTableDef()


@routes.get("/_matrix/client/v3/voip/turnServer")
async def turn_server(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    return json_response(
        turn_credentials(svc.config.turn, who.user_id, svc.accounts.clock.now_ms())
    )
