"""Profiles (with the extended fields of Matrix 1.16) and the user directory."""

from __future__ import annotations

from aiohttp import web

from homeserver.client_api.common import requester, services
from homeserver.common.errors import MatrixError, bad_json, forbidden, not_found
from homeserver.common.http import json_response, read_json

routes = web.RouteTableDef()
P = "/_matrix/client/v3/profile/{user_id}"


@routes.get(P)
async def get_profile(request: web.Request) -> web.Response:
    svc = services(request)
    return json_response(await svc.directory.get_profile(request.match_info["user_id"]))


@routes.get(P + "/{field}")
async def get_field(request: web.Request) -> web.Response:
    svc = services(request)
    field = request.match_info["field"]
    profile = await svc.directory.get_profile(request.match_info["user_id"])
    if field not in profile:
        raise not_found(f"Profile has no {field}")
    return json_response({field: profile[field]})


@routes.put(P + "/{field}")
async def set_field(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    if request.match_info["user_id"] != who.user_id and not who.is_admin:
        raise forbidden("You can only change your own profile")
    field = request.match_info["field"]
    body = await read_json(request)
    if field not in body:
        raise MatrixError(400, "M_MISSING_PARAM", f"Missing {field}")
    await svc.directory.set_profile_field(request.match_info["user_id"], field, body[field])
    return json_response({})


@routes.delete(P + "/{field}")
async def delete_field(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    if request.match_info["user_id"] != who.user_id and not who.is_admin:
        raise forbidden("You can only change your own profile")
    await svc.directory.delete_profile_field(
        request.match_info["user_id"], request.match_info["field"]
    )
    return json_response({})


@routes.post("/_matrix/client/v3/user_directory/search")
async def search(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    body = await read_json(request)
    term = body.get("search_term")
    if not isinstance(term, str):
        raise bad_json("search_term must be a string")
    limit = body.get("limit", 10)
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise bad_json("limit must be a positive integer")
    return json_response(await svc.directory.search_users(who.user_id, term, min(limit, 100)))
