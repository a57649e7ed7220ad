"""Room tags (the spec's "Room Tagging" module): ``GET /user/{userId}/rooms/{roomId}/tags``
and ``PUT``/``DELETE .../tags/{tag}``, kept in the room's ``m.tag`` account data, which /sync
gives to clients (Element's favourites and low priority).  Also the empty answers of the
modules this node does not offer, as Synapse gives them when unconfigured: third-party
networks (no bridges) and 3PIDs (none: ``m.3pid_changes`` is off)."""

from __future__ import annotations

from aiohttp import web

from homeserver.client_api.common import requester, services
from homeserver.common.errors import MatrixError, bad_json, forbidden
from homeserver.common.http import json_response, read_json

routes = web.RouteTableDef()
TAGS = "/_matrix/client/v3/user/{user_id}/rooms/{room_id}/tags"
V3 = "/_matrix/client/v3"


async def _own(request: web.Request) -> str:
    who = await requester(request)
    if request.match_info["user_id"] != who.user_id:
        raise forbidden("You can only change your own tags")
    return who.user_id


@routes.get(TAGS)
async def get_tags(request: web.Request) -> web.Response:
    user_id = await _own(request)
    tags = await services(request).userdata.tags(user_id, request.match_info["room_id"])
    return json_response({"tags": tags})


@routes.put(TAGS + "/{tag}")
async def put_tag(request: web.Request) -> web.Response:
    user_id = await _own(request)
    body = await read_json(request, allow_empty=True)
    if not isinstance(body, dict):
        raise bad_json("A tag's content is a JSON object")
    await services(request).userdata.set_tag(
        user_id, request.match_info["room_id"], request.match_info["tag"], body
    )
    return json_response({})


@routes.delete(TAGS + "/{tag}")
async def delete_tag(request: web.Request) -> web.Response:
    user_id = await _own(request)
    await services(request).userdata.set_tag(
        user_id, request.match_info["room_id"], request.match_info["tag"], None
    )
    return json_response({})


# ---------------------------------------------------------------- what is not offered


@routes.get(V3 + "/account/3pid")
async def threepids(request: web.Request) -> web.Response:
    await requester(request)
    return json_response({"threepids": []})


@routes.get(V3 + "/thirdparty/protocols")
async def protocols(request: web.Request) -> web.Response:
    await requester(request)
    return json_response({})


@routes.get(V3 + "/thirdparty/protocol/{protocol}")
async def protocol(request: web.Request) -> web.Response:
    await requester(request)
    raise MatrixError(404, "M_NOT_FOUND", "No such protocol")


@routes.get(V3 + "/thirdparty/{kind:location|user}")
@routes.get(V3 + "/thirdparty/{kind:location|user}/{protocol}")
async def lookups(request: web.Request) -> web.Response:
    await requester(request)
    return json_response([])
