"""Authenticated routes of queries: profiles and directory (``/query``), devices and keys,
the public room list, space hierarchies, timestamp_to_event and media."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from federation.errors import MatrixError
from federation.server.http import (
    F1,
    FederationServer,
    endpoint,
    json_response,
    object_body,
)


@endpoint("GET", F1 + "/query/{query_type}")
async def query(
    request: web.Request, server: FederationServer, origin: str, body: Any
) -> web.StreamResponse:
    return json_response(
        await server.handler.on_query(origin, request.match_info["query_type"], dict(request.query))
    )


@endpoint("GET", F1 + "/user/devices/{user_id}")
async def user_devices(
    request: web.Request, server: FederationServer, origin: str, body: Any
) -> web.StreamResponse:
    return json_response(
        await server.handler.on_user_devices(origin, request.match_info["user_id"])
    )


@endpoint("POST", F1 + "/user/keys/query")
async def user_keys_query(
    request: web.Request, server: FederationServer, origin: str, body: Any
) -> web.StreamResponse:
    return json_response(await server.handler.on_user_keys(origin, "query", object_body(body)))


@endpoint("POST", F1 + "/user/keys/claim")
async def user_keys_claim(
    request: web.Request, server: FederationServer, origin: str, body: Any
) -> web.StreamResponse:
    return json_response(await server.handler.on_user_keys(origin, "claim", object_body(body)))


@endpoint("GET", F1 + "/publicRooms")
async def public_rooms_get(
    request: web.Request, server: FederationServer, origin: str, body: Any
) -> web.StreamResponse:
    limit = request.query.get("limit")
    return json_response(
        await server.handler.on_public_rooms(
            origin,
            int(limit) if limit and limit.isdigit() else None,
            request.query.get("since"),
            None,
        )
    )


@endpoint("POST", F1 + "/publicRooms")
async def public_rooms_post(
    request: web.Request, server: FederationServer, origin: str, body: Any
) -> web.StreamResponse:
    body = object_body(body or {})
    search = (
        body.get("filter", {}).get("generic_search_term")
        if isinstance(body.get("filter"), dict)
        else None
    )
    limit = body.get("limit")
    since = body.get("since")
    return json_response(
        await server.handler.on_public_rooms(
            origin,
            limit if isinstance(limit, int) else None,
            since if isinstance(since, str) else None,
            search if isinstance(search, str) else None,
        )
    )


@endpoint("GET", F1 + "/hierarchy/{room_id}")
async def hierarchy(
    request: web.Request, server: FederationServer, origin: str, body: Any
) -> web.StreamResponse:
    suggested = request.query.get("suggested_only", "false") == "true"
    return json_response(
        await server.handler.on_hierarchy(origin, request.match_info["room_id"], suggested)
    )


@endpoint("GET", F1 + "/timestamp_to_event/{room_id}")
async def timestamp_to_event(
    request: web.Request, server: FederationServer, origin: str, body: Any
) -> web.StreamResponse:
    raw_ts, direction = request.query.get("ts", ""), request.query.get("dir")
    if not (raw_ts.isascii() and raw_ts.isdigit()) or len(raw_ts) > 16:
        raise MatrixError(400, "M_INVALID_PARAM", "ts must be a timestamp in milliseconds")
    if direction not in ("f", "b"):
        raise MatrixError(400, "M_INVALID_PARAM", "dir must be 'f' or 'b'")
    return json_response(
        await server.handler.on_timestamp_to_event(
            origin, request.match_info["room_id"], int(raw_ts), direction == "f"
        )
    )


@endpoint("GET", F1 + "/media/download/{media_id}")
async def media_download(
    request: web.Request, server: FederationServer, origin: str, body: Any
) -> web.StreamResponse:
    return await server.handler.on_media(origin, request.match_info["media_id"])


@endpoint("GET", F1 + "/media/thumbnail/{media_id}")
async def media_thumbnail(
    request: web.Request, server: FederationServer, origin: str, body: Any
) -> web.StreamResponse:
    return await server.handler.on_media_thumbnail(
        origin, request.match_info["media_id"], dict(request.query)
    )
