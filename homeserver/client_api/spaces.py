"""Spaces: ``GET /_matrix/client/v1/rooms/{roomId}/hierarchy``."""

from __future__ import annotations

from aiohttp import web

from homeserver.client_api.common import requester, services
from homeserver.common.errors import invalid_param
from homeserver.common.http import json_response

routes = web.RouteTableDef()


def _boolean(request: web.Request, name: str) -> bool:
    raw = request.query.get(name, "false")
    if raw not in ("true", "false"):
        raise invalid_param(f"'{name}' must be true or false")
    return raw == "true"


def _integer(request: web.Request, name: str, minimum: int) -> int | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit()) or int(raw[:10]) < minimum:
        raise invalid_param(f"'{name}' must be an integer of at least {minimum}")
    return int(raw[:10]) if len(raw) <= 10 else 10**10  # beyond any server maximum


@routes.get("/_matrix/client/v1/rooms/{room_id}/hierarchy")
async def hierarchy(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    suggested_only = _boolean(request, "suggested_only")
    limit = _integer(request, "limit", 1)
    max_depth = _integer(request, "max_depth", 0)
    result = await svc.hierarchy.hierarchy(
        who.user_id,
        request.match_info["room_id"],
        suggested_only=suggested_only,
        max_depth=max_depth,
        limit=limit,
        from_token=request.query.get("from"),
    )
    return json_response(result)
