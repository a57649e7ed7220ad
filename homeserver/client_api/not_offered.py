"""Operations of what Kairan does not offer, answered as the spec says a server without it
answers: OAuth 2.0 (``/auth_metadata``), application services (their ping and their room
directory), acting as a policy server; and the deprecated ``GET /events/{eventId}``."""

from __future__ import annotations

from aiohttp import web

from homeserver.client_api.common import requester, services
from homeserver.common.errors import MatrixError, forbidden, not_found, unrecognized
from homeserver.common.http import json_response

routes = web.RouteTableDef()


@routes.get("/_matrix/client/v1/auth_metadata")
async def auth_metadata(request: web.Request) -> web.Response:
    # The spec's answer of a server without the OAuth 2.0 API (clients then use /login).
    raise unrecognized("This server does not support the OAuth 2.0 API")


@routes.post("/_matrix/client/v1/appservice/{appservice_id}/ping")
async def appservice_ping(request: web.Request) -> web.Response:
    await requester(request)
    raise forbidden("The access token does not belong to an application service")


@routes.put("/_matrix/client/v3/directory/list/appservice/{network_id}/{room_id}")
async def appservice_directory(request: web.Request) -> web.Response:
    await requester(request)
    raise forbidden("Only application services can use this endpoint")


@routes.get("/.well-known/matrix/policy_server")
async def policy_server(request: web.Request) -> web.Response:
    raise MatrixError(404, "M_NOT_FOUND", "This server is not a policy server")


@routes.get("/_matrix/client/v3/events/{event_id}")
async def event(request: web.Request) -> web.Response:
    """Deprecated: ``/rooms/{roomId}/event/{eventId}`` without the room; 404 for an event
    the user may not see, as for one that does not exist."""
    svc = services(request)
    who = await requester(request)
    found = await svc.rooms.get_event(request.match_info["event_id"])
    if found is None:
        raise not_found("Event not found")
    try:
        visible = await svc.room_state.event(who.user_id, found.room_id, found.event_id)
    except MatrixError as e:
        if e.status != 403:
            raise
        # The spec's one answer: not found, or not yours to read (nor which room it is in).
        raise not_found("Event not found") from None
    return json_response((await svc.history.serialize([visible], (who.user_id, who.device_id)))[0])
