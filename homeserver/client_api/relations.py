"""Relations and threads (the spec's "Relationships API" and "Threading" modules):
``GET /v1/rooms/{roomId}/relations/{eventId}[/{relType}[/{eventType}]]`` and
``GET /v1/rooms/{roomId}/threads``."""

from __future__ import annotations

from aiohttp import web

from homeserver.client_api.common import requester, services
from homeserver.common.errors import invalid_param
from homeserver.common.http import json_response

routes = web.RouteTableDef()
R = "/_matrix/client/v1/rooms/{room_id}"
#: The most children or threads one response holds (Synapse's pagination maximum).
MAX_LIMIT = 1000


def _limit(request: web.Request, default: int, minimum: int) -> int:
    raw = request.query.get("limit")
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 9) or int(raw) < minimum:
        raise invalid_param(f"limit must be an integer of at least {minimum}")
    return min(int(raw), MAX_LIMIT)


def _choice(request: web.Request, name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = request.query.get(name, default)
    if value not in allowed:
        raise invalid_param(f"{name} must be one of {', '.join(allowed)}")
    return value


@routes.get(R + "/relations/{event_id}")
@routes.get(R + "/relations/{event_id}/{rel_type}")
@routes.get(R + "/relations/{event_id}/{rel_type}/{event_type}")
async def relations(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    backwards = _choice(request, "dir", "b", ("b", "f")) == "b"
    recurse = _choice(request, "recurse", "false", ("true", "false")) == "true"
    return json_response(
        await svc.relations.relations(
            (who.user_id, who.device_id),
            request.match_info["room_id"],
            request.match_info["event_id"],
            rel_type=request.match_info.get("rel_type"),
            event_type=request.match_info.get("event_type"),
            from_token=request.query.get("from"),
            to_token=request.query.get("to"),
            limit=_limit(request, 5, 0),
            backwards=backwards,
            recurse=recurse,
        )
    )


@routes.get(R + "/threads")
async def threads(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    include = _choice(request, "include", "all", ("all", "participated"))
    return json_response(
        await svc.relations.threads(
            (who.user_id, who.device_id),
            request.match_info["room_id"],
            participated_only=include == "participated",
            from_token=request.query.get("from"),
            limit=_limit(request, 5, 1),
        )
    )
