"""Rooms: create, membership, send, state, redact, members, history (aliases and the room
directory are in directory.py)."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from homeserver.client_api.common import (
    refuse_suspended_redaction,
    requester,
    services,
    suspended_error,
)
from homeserver.client_api.threepids import refuse_third_party_invites
from homeserver.common.errors import MatrixError, bad_json
from homeserver.common.http import (
    json_response,
    optional_string,
    query_int,
    read_json,
    required_string,
)

routes = web.RouteTableDef()
R = "/_matrix/client/v3/rooms/{room_id}"


@routes.post("/_matrix/client/v3/createRoom")
async def create_room(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    body = await read_json(request, allow_empty=True)
    refuse_third_party_invites(body, create=True)
    room_id, alias = await svc.handler.create_room(who.user_id, body)
    response: dict[str, Any] = {"room_id": room_id}
    if alias:
        response["room_alias"] = alias
    return json_response(response)


@routes.post("/_matrix/client/v3/join/{room_id_or_alias}")
@routes.post(R + "/join")
async def join(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    body = await read_json(request, allow_empty=True)
    target = request.match_info.get("room_id_or_alias") or request.match_info["room_id"]
    via = request.query.getall("server_name", []) + request.query.getall("via", [])
    room_id = await svc.handler.join(who.user_id, target, optional_string(body, "reason"), via)
    return json_response({"room_id": room_id})


@routes.post(R + "/invite")
async def invite(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    body = await read_json(request)
    refuse_third_party_invites(body, create=False)
    await svc.handler.invite(
        who.user_id,
        request.match_info["room_id"],
        required_string(body, "user_id"),
        reason=optional_string(body, "reason"),
    )
    return json_response({})


@routes.post(R + "/leave")
async def leave(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    body = await read_json(request, allow_empty=True)
    await svc.handler.leave(
        who.user_id, request.match_info["room_id"], optional_string(body, "reason")
    )
    return json_response({})


@routes.post(R + "/forget")
async def forget(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    await svc.handler.forget(who.user_id, request.match_info["room_id"])
    return json_response({})


async def _membership_action(request: web.Request, action: str) -> web.Response:
    svc = services(request)
    who = await requester(request)
    body = await read_json(request)
    await svc.handler.set_membership(
        who.user_id,
        request.match_info["room_id"],
        required_string(body, "user_id"),
        action,
        optional_string(body, "reason"),
    )
    return json_response({})


@routes.post(R + "/kick")
async def kick(request: web.Request) -> web.Response:
    return await _membership_action(request, "kick")


@routes.post(R + "/ban")
async def ban(request: web.Request) -> web.Response:
    return await _membership_action(request, "ban")


@routes.post(R + "/unban")
async def unban(request: web.Request) -> web.Response:
    return await _membership_action(request, "unban")


@routes.put(R + "/send/{event_type}/{txn_id}")
async def send(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    body = await read_json(request, allow_empty=True, limit=65_536)
    if request.match_info["event_type"] == "m.room.redaction":
        await refuse_suspended_redaction(request, who, body.get("redacts"))
    event_id = await svc.handler.send_message(
        who.user_id,
        who.device_id,
        request.match_info["room_id"],
        request.match_info["event_type"],
        body,
        request.match_info["txn_id"],
    )
    await svc.presence.bump_active(who.user_id)  # as Synapse: sending is activity
    return json_response({"event_id": event_id})


@routes.put(R + "/state/{event_type}")
@routes.put(R + "/state/{event_type}/{state_key:[^/]*}")
async def put_state(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    body = await read_json(request, allow_empty=True, limit=65_536)
    if who.suspended and body.get("membership") != "leave":  # only its own m.room.member
        raise suspended_error("Changing membership while suspended is not allowed.")
    event_id = await svc.handler.send_state(
        who.user_id,
        request.match_info["room_id"],
        request.match_info["event_type"],
        request.match_info.get("state_key", ""),
        body,
    )
    return json_response({"event_id": event_id})


@routes.get(R + "/state/{event_type}")
@routes.get(R + "/state/{event_type}/{state_key:[^/]*}")
async def get_state_event(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    event = await svc.room_state.state_event(
        who.user_id,
        request.match_info["room_id"],
        request.match_info["event_type"],
        request.match_info.get("state_key", ""),
    )
    if request.query.get("format") == "event":
        return json_response((await svc.history.serialize([event], None))[0])
    return json_response(event.pdu.get("content", {}))


@routes.get(R + "/state")
async def get_state(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    events = await svc.room_state.state(who.user_id, request.match_info["room_id"])
    return json_response(await svc.history.serialize(events, None))


@routes.get(R + "/members")
async def members(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    chunk = await svc.room_state.members(
        who.user_id,
        request.match_info["room_id"],
        at=request.query.get("at"),
        membership=request.query.get("membership"),
        not_membership=request.query.get("not_membership"),
    )
    return json_response({"chunk": await svc.history.serialize(chunk, None)})


@routes.get(R + "/joined_members")
async def joined_members(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    joined = await svc.room_state.joined_members(who.user_id, request.match_info["room_id"])
    return json_response({"joined": joined})


@routes.get("/_matrix/client/v3/joined_rooms")
async def joined_rooms(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    return json_response({"joined_rooms": await svc.rooms.joined_rooms(who.user_id)})


def _parse_filter(request: web.Request) -> dict[str, Any]:
    raw = request.query.get("filter")
    if not raw:
        return {}
    try:
        parsed = json.loads(raw)
    except ValueError:
        raise bad_json("filter is not valid JSON") from None
    if not isinstance(parsed, dict):
        raise bad_json("filter must be a JSON object")
    for key in ("types", "not_types", "senders", "not_senders"):
        items = parsed.get(key)
        if items is not None and (
            not isinstance(items, list) or not all(isinstance(i, str) for i in items)
        ):
            raise bad_json(f"filter.{key} must be a list of strings")
    return parsed


@routes.get(R + "/messages")
async def messages(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    direction = request.query.get("dir", "b")
    if direction not in ("b", "f"):
        raise MatrixError(400, "M_INVALID_PARAM", "dir must be 'b' or 'f'")
    return json_response(
        await svc.history.messages(
            who.user_id,
            who.device_id,
            request.match_info["room_id"],
            from_token=request.query.get("from"),
            to_token=request.query.get("to"),
            backwards=direction == "b",
            limit=query_int(request, "limit", 10, minimum=1, maximum=1000),
            event_filter=_parse_filter(request),
        )
    )


@routes.get(R + "/context/{event_id}")
async def context(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    return json_response(
        await svc.history.context(
            who.user_id,
            who.device_id,
            request.match_info["room_id"],
            request.match_info["event_id"],
            query_int(request, "limit", 10, minimum=0, maximum=100),
            _parse_filter(request),
        )
    )


@routes.get(R + "/event/{event_id}")
async def get_event(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    event = await svc.room_state.event(
        who.user_id, request.match_info["room_id"], request.match_info["event_id"]
    )
    served = await svc.history.serialize([event], (who.user_id, who.device_id), aggregate=True)
    return json_response(served[0])


@routes.put(R + "/redact/{event_id}/{txn_id}")
async def redact(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    body = await read_json(request, allow_empty=True)
    await refuse_suspended_redaction(request, who, request.match_info["event_id"])
    event_id = await svc.handler.redact(
        who.user_id,
        who.device_id,
        request.match_info["room_id"],
        request.match_info["event_id"],
        optional_string(body, "reason"),
        request.match_info["txn_id"],
    )
    return json_response({"event_id": event_id})
