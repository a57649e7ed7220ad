"""Room operations beyond membership and messages: upgrades, knocking, room summaries,
``timestamp_to_event`` and reporting."""

from __future__ import annotations

from aiohttp import web

from homeserver.client_api.common import requester, services
from homeserver.common.http import json_response, optional_string, read_json
from homeserver.rooms.timestamps import parse_direction, parse_ts

routes = web.RouteTableDef()
R = "/_matrix/client/v3/rooms/{room_id}"


@routes.post(R + "/upgrade")
async def upgrade(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    body = await read_json(request)
    new_room = await svc.upgrades.upgrade(who.user_id, request.match_info["room_id"], body)
    return json_response({"replacement_room": new_room})


@routes.post("/_matrix/client/v3/knock/{room_id_or_alias}")
async def knock(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    body = await read_json(request, allow_empty=True)
    via = request.query.getall("via", []) + request.query.getall("server_name", [])
    room_id = await svc.knocks.knock(
        who.user_id,
        request.match_info["room_id_or_alias"],
        optional_string(body, "reason"),
        via,
    )
    return json_response({"room_id": room_id})


@routes.get("/_matrix/client/v1/room_summary/{room_id_or_alias}")
async def room_summary(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    via = request.query.getall("via", [])
    summary = await svc.room_summaries.summary(
        who.user_id, request.match_info["room_id_or_alias"], via
    )
    return json_response(summary)


@routes.get("/_matrix/client/v1/rooms/{room_id}/timestamp_to_event")
async def timestamp_to_event(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    ts = parse_ts(request.query.get("ts"))
    forward = parse_direction(request.query.get("dir"))
    event = await svc.timestamps.for_user(who.user_id, request.match_info["room_id"], ts, forward)
    return json_response(
        {"event_id": event.event_id, "origin_server_ts": event.pdu["origin_server_ts"]}
    )


@routes.post(R + "/report/{event_id}")
async def report_event(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    body = await read_json(request, allow_empty=True)
    await svc.reports.report_event(
        who.user_id, request.match_info["room_id"], request.match_info["event_id"], body
    )
    return json_response({})


@routes.post(R + "/report")
async def report_room(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    body = await read_json(request)
    await svc.reports.report_room(who.user_id, request.match_info["room_id"], body)
    return json_response({})


@routes.post("/_matrix/client/v3/users/{user_id}/report")
async def report_user(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    body = await read_json(request)
    await svc.reports.report_user(who.user_id, request.match_info["user_id"], body)
    return json_response({})
