"""Simplified Sliding Sync (MSC4186) at Synapse's unstable path: ``pos`` and ``timeout`` in
the query, the lists, room subscriptions and extensions in the body."""

from __future__ import annotations

from aiohttp import web

from homeserver.client_api.common import requester, services
from homeserver.common.http import json_response, query_int, read_json
from homeserver.sync.sliding.request import parse_body

routes = web.RouteTableDef()


@routes.post("/_matrix/client/unstable/org.matrix.simplified_msc3575/sync")
async def sliding_sync(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    body = parse_body(await read_json(request, allow_empty=True))
    response = await svc.sliding_sync.sync(
        who,
        body,
        request.query.get("pos"),
        query_int(request, "timeout", 0, minimum=0),
    )
    return json_response(response)
