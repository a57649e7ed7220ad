"""Send-to-device messaging."""

from __future__ import annotations

from aiohttp import web

from homeserver.client_api.common import requester, services
from homeserver.common.http import json_response, read_json

routes = web.RouteTableDef()


@routes.put("/_matrix/client/v3/sendToDevice/{event_type}/{txn_id}")
async def send_to_device(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    body = await read_json(request)
    await svc.keys.send_to_device(
        who, request.match_info["event_type"], request.match_info["txn_id"], body
    )
    return json_response({})
