"""Room aliases and the room directory: aliases of a room, the rooms published in the
directory and /publicRooms."""

from __future__ import annotations

from aiohttp import web

from homeserver.client_api.common import requester, services
from homeserver.common.errors import bad_json, not_found
from homeserver.common.http import json_response, query_int, read_json, required_string

routes = web.RouteTableDef()


@routes.get("/_matrix/client/v3/directory/room/{alias}")
async def get_alias(request: web.Request) -> web.Response:
    svc = services(request)
    alias = request.match_info["alias"]
    room_id = await svc.directory.room_for_alias(alias)
    if room_id is None:
        raise not_found(f"Room alias {alias} not found")
    return json_response({"room_id": room_id, "servers": [svc.config.server_name]})


@routes.put("/_matrix/client/v3/directory/room/{alias}")
async def put_alias(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    alias = request.match_info["alias"]
    body = await read_json(request)
    room_id = required_string(body, "room_id")
    await svc.directory.create_alias(who.user_id, alias, room_id)
    return json_response({})


@routes.delete("/_matrix/client/v3/directory/room/{alias}")
async def delete_alias(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    await svc.directory.delete_alias(who.user_id, who.is_admin, request.match_info["alias"])
    return json_response({})


@routes.get("/_matrix/client/v3/rooms/{room_id}/aliases")
async def room_aliases(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    aliases = await svc.directory.aliases(who.user_id, request.match_info["room_id"])
    return json_response({"aliases": aliases})


@routes.get("/_matrix/client/v3/directory/list/room/{room_id}")
async def get_visibility(request: web.Request) -> web.Response:
    visibility = await services(request).directory.visibility(request.match_info["room_id"])
    return json_response({"visibility": visibility})


@routes.put("/_matrix/client/v3/directory/list/room/{room_id}")
async def set_visibility(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    body = await read_json(request)
    visibility = body.get("visibility")
    if visibility not in ("public", "private"):
        raise bad_json("visibility must be 'public' or 'private'")
    room = await svc.rooms.require_joined(request.match_info["room_id"], who.user_id)
    await svc.handler.check_state_power(who.user_id, room, "m.room.canonical_alias")
    await svc.directory.set_public(room.room_id, visibility == "public")
    return json_response({})


@routes.get("/_matrix/client/v3/publicRooms")
@routes.post("/_matrix/client/v3/publicRooms")
async def public_rooms(request: web.Request) -> web.Response:
    svc = services(request)
    body = await read_json(request, allow_empty=True) if request.method == "POST" else {}
    server = request.query.get("server")
    # Asking another server is for users (as Synapse); this server's list is public.
    if request.method == "POST" or server is not None:
        await requester(request)
    search = ""
    room_filter = body.get("filter")
    if isinstance(room_filter, dict) and isinstance(room_filter.get("generic_search_term"), str):
        search = room_filter["generic_search_term"]
    limit = (
        body.get("limit")
        if request.method == "POST"
        else query_int(request, "limit", 100, minimum=1)
    )
    since = body.get("since") if request.method == "POST" else request.query.get("since")
    return json_response(
        await svc.directory.public_rooms(
            search, limit if isinstance(limit, int) else 100, since, server
        )
    )
