"""/sync, filters, receipts, read markers, typing and account data."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from homeserver.client_api.common import requester, services
from homeserver.common.errors import MatrixError, bad_json, forbidden
from homeserver.common.http import json_response, query_int, read_json
from homeserver.sync.service import SyncFilter
from homeserver.userdata.service import validate_filter

routes = web.RouteTableDef()
U = "/_matrix/client/v3/user/{user_id}"


@routes.get("/_matrix/client/v3/sync")
async def sync(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    raw_filter = request.query.get("filter")
    body: dict[str, Any] = {}
    if raw_filter:
        if raw_filter.startswith("{"):
            try:
                body = json.loads(raw_filter)
            except ValueError:
                raise bad_json("filter is not valid JSON") from None
            validate_filter(body)
        else:
            body = await svc.userdata.get_filter(who.user_id, raw_filter)
    full_state = request.query.get("full_state", "false") == "true"
    async with svc.presence.syncing(who.user_id, request.query.get("set_presence")):
        response = await svc.sync.sync(
            who,
            request.query.get("since"),
            query_int(request, "timeout", 0, minimum=0),
            SyncFilter.from_json(body),
            full_state,
        )
    return json_response(response)


def _own(request: web.Request, user_id: str) -> None:
    if request.match_info["user_id"] != user_id:
        raise forbidden("You can only access your own data")


@routes.post(U + "/filter")
async def create_filter(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    _own(request, who.user_id)
    body = await read_json(request)
    return json_response({"filter_id": await svc.userdata.create_filter(who.user_id, body)})


@routes.get(U + "/filter/{filter_id}")
async def get_filter(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    _own(request, who.user_id)
    return json_response(
        await svc.userdata.get_filter(who.user_id, request.match_info["filter_id"])
    )


@routes.post("/_matrix/client/v3/rooms/{room_id}/receipt/{receipt_type}/{event_id}")
async def receipt(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    body = await read_json(request, allow_empty=True)
    thread_id = body.get("thread_id")
    if thread_id is not None and not isinstance(thread_id, str):
        raise bad_json("thread_id must be a string")
    receipt_type = request.match_info["receipt_type"]
    if receipt_type == "m.fully_read":
        await svc.userdata.set_read_markers(
            who.user_id,
            request.match_info["room_id"],
            {"m.fully_read": request.match_info["event_id"]},
        )
    else:
        await svc.userdata.set_receipt(
            who.user_id,
            request.match_info["room_id"],
            receipt_type,
            request.match_info["event_id"],
            thread_id,
        )
    return json_response({})


@routes.post("/_matrix/client/v3/rooms/{room_id}/read_markers")
async def read_markers(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    body = await read_json(request)
    await svc.userdata.set_read_markers(who.user_id, request.match_info["room_id"], body)
    return json_response({})


@routes.put("/_matrix/client/v3/rooms/{room_id}/typing/{user_id}")
async def typing(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    _own(request, who.user_id)
    body = await read_json(request)
    is_typing = body.get("typing")
    if not isinstance(is_typing, bool):
        raise bad_json("typing must be a boolean")
    timeout = body.get("timeout", 30_000)
    if not isinstance(timeout, int) or isinstance(timeout, bool):
        raise bad_json("timeout must be an integer")
    room_id = request.match_info["room_id"]
    await svc.rooms.require_joined(room_id, who.user_id)
    svc.typing.set_typing(room_id, who.user_id, is_typing, timeout)
    return json_response({})


def _data_type(request: web.Request) -> str:
    data_type = request.match_info["type"]
    if not data_type:
        raise MatrixError(400, "M_INVALID_PARAM", "Missing account data type")
    return data_type


@routes.put(U + "/account_data/{type}")
@routes.put(U + "/rooms/{room_id}/account_data/{type}")
async def put_account_data(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    _own(request, who.user_id)
    body = await read_json(request, allow_empty=True)
    await svc.userdata.put_account_data(
        who.user_id, request.match_info.get("room_id", ""), _data_type(request), body
    )
    return json_response({})


@routes.get(U + "/account_data/{type}")
@routes.get(U + "/rooms/{room_id}/account_data/{type}")
async def get_account_data(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    _own(request, who.user_id)
    return json_response(
        await svc.userdata.get_account_data(
            who.user_id, request.match_info.get("room_id", ""), _data_type(request)
        )
    )
