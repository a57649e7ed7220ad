"""Pushers API: list and set the user's pushers; the notifications they were sent about."""

from __future__ import annotations

from aiohttp import web

from homeserver.client_api.common import requester, services
from homeserver.common.http import json_response, query_int, read_json

routes = web.RouteTableDef()


@routes.get("/_matrix/client/v3/pushers")
async def get_pushers(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    return json_response({"pushers": await svc.pushers.list(who.user_id)})


@routes.post("/_matrix/client/v3/pushers/set")
async def set_pusher(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    body = await read_json(request)
    await svc.pushers.set(who, body)
    return json_response({})


@routes.get("/_matrix/client/v3/notifications")
async def notifications(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    limit = query_int(request, "limit", 50, minimum=1) if "limit" in request.query else None
    return json_response(
        await svc.notifications.notifications(
            who.user_id, who.device_id, request.query.get("from"), limit, request.query.get("only")
        )
    )
