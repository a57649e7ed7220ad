"""The sample feature's endpoints and its middleware for the internet zone."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from homeserver.client_api.common import requester
from homeserver.common.errors import MatrixError, not_found
from homeserver.common.http import Handler, json_response, read_json
from homeserver.extensions import Registry
from homeserver.extensions.points import Requester
from tests.homeserver.extensions.sample.service import SampleService

CLIENT = "/_matrix/client/unstable/jp.kairan/sample"


def register_routes(registry: Registry, service: SampleService) -> None:
    async def put_note(request: web.Request) -> web.Response:
        who = await requester(request)
        body = await read_json(request)
        value = body.get("value")
        if not isinstance(value, str):
            raise MatrixError(400, "M_BAD_JSON", "value must be a string")
        await service.put_note(who.user_id, request.match_info["key"], value)
        return json_response({})

    async def get_note(request: web.Request) -> web.Response:
        who = await requester(request)
        value = await service.get_note(who.user_id, request.match_info["key"])
        if value is None:
            raise not_found("No such note")
        return json_response({"value": value})

    async def ping(request: web.Request, origin: str, body: Any) -> web.Response:
        return json_response({"origin": origin, "server": service.context.server_name})

    async def stats(request: web.Request, who: Requester) -> web.Response:
        return json_response({**(await service.stats()), "admin": who.user_id})

    async def approve(request: web.Request, who: Requester) -> web.Response:
        body = await read_json(request)
        service.logins.pending.discard((str(body.get("user_id")), str(body.get("device_id"))))
        return json_response({})

    async def hold(request: web.Request, who: Requester) -> web.Response:
        body = await read_json(request)
        service.logins.pending.add((str(body.get("user_id")), str(body.get("device_id"))))
        return json_response({})

    registry.add_client_route("PUT", CLIENT + "/notes/{key}", put_note)
    registry.add_client_route("GET", CLIENT + "/notes/{key}", get_note)
    registry.add_federation_route("GET", "/_matrix/federation/unstable/jp.kairan/sample/ping", ping)
    registry.add_admin_route("GET", "/_kairan/admin/v1/sample/stats", stats)
    registry.add_admin_route("POST", "/_kairan/admin/v1/sample/approve", approve)
    registry.add_admin_route("POST", "/_kairan/admin/v1/sample/hold", hold)


def zone_middleware(zone: str) -> Any:
    """Marks responses with the zone, and keeps the admin API off it."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/_kairan/admin"):
            raise MatrixError(403, "M_FORBIDDEN", f"The admin API is not served to the {zone}")
        response = await handler(request)
        response.headers["X-Kairan-Zone"] = zone
        return response

    return middleware
