"""URL previews: GET /_matrix/client/v1/media/preview_url (and the legacy
/_matrix/media/{v3,r0,v1}/preview_url, which Synapse still serves).  Authenticated first;
off by default (404 M_UNRECOGNIZED, as Synapse's answer when they are disabled)."""

from __future__ import annotations

from aiohttp import web

from homeserver.client_api.common import requester, services
from homeserver.common.errors import missing_param
from homeserver.common.http import json_response, query_int

routes = web.RouteTableDef()


@routes.get("/_matrix/client/v1/media/preview_url")
@routes.get("/_matrix/media/v3/preview_url")
@routes.get("/_matrix/media/r0/preview_url")
@routes.get("/_matrix/media/v1/preview_url")
async def preview_url(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    url = request.query.get("url")
    query_int(request, "ts", 0)  # a point in time the client would like; checked, not used
    if svc.url_preview.enabled and not url:
        raise missing_param("Missing url parameter")
    return json_response(await svc.url_preview.preview(who.user_id, url or ""))
