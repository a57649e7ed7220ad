"""Rooms: create, membership, send, state, redact, members, history (aliases and the room
directory are in directory.py)."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from homeserver.client_api.common import requester, services
from homeserver.client_api.services import Services
from homeserver.common.errors import MatrixError, bad_json, forbidden, not_found
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
    event_id = await svc.handler.send_message(
        who.user_id,
        who.device_id,
        request.match_info["room_id"],
        request.match_info["event_type"],
        body,
        request.match_info["txn_id"],
    )
    return json_response({"event_id": event_id})


@routes.put(R + "/state/{event_type}")
@routes.put(R + "/state/{event_type}/{state_key:[^/]*}")
async def put_state(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    body = await read_json(request, allow_empty=True, limit=65_536)
    event_id = await svc.handler.send_state(
        who.user_id,
        request.match_info["room_id"],
        request.match_info["event_type"],
        request.match_info.get("state_key", ""),
        body,
    )
    return json_response({"event_id": event_id})


async def _readable_state(svc: Services, user_id: str, room_id: str) -> dict[tuple[str, str], str]:
    """The room state a user may read, as Synapse serves it: the current state to members
    and, in a world-readable room, to anyone; to a departed member, the state when they left."""
    room = await svc.history.check_can_read(user_id, room_id)
    membership = room.members.get(user_id)
    if membership == "join":
        return dict(room.state)
    if membership in ("leave", "ban"):
        event_id = room.state.get(("m.room.member", user_id))
        left = await svc.rooms.get_event(event_id) if event_id else None
        if left is not None:
            return await svc.rooms.state_at(left)
    visibility = (await svc.rooms.state_content(room, "m.room.history_visibility")).get(
        "history_visibility"
    )
    if visibility == "world_readable":
        return dict(room.state)
    raise forbidden("You are not joined to this room")


@routes.get(R + "/state/{event_type}")
@routes.get(R + "/state/{event_type}/{state_key:[^/]*}")
async def get_state_event(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    state = await _readable_state(svc, who.user_id, request.match_info["room_id"])
    key = (request.match_info["event_type"], request.match_info.get("state_key", ""))
    event = await svc.rooms.get_event(state[key]) if key in state else None
    if event is None:
        raise not_found("Event not found")
    if request.query.get("format") == "event":
        return json_response((await svc.history.serialize([event], None))[0])
    return json_response(event.pdu.get("content", {}))


@routes.get(R + "/state")
async def get_state(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    state = await _readable_state(svc, who.user_id, request.match_info["room_id"])
    found = await svc.rooms.get_events(state.values())
    events = [found[i] for i in state.values() if i in found]
    return json_response(await svc.history.serialize(events, None))


@routes.get(R + "/members")
async def members(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    state = await _readable_state(svc, who.user_id, request.match_info["room_id"])
    membership = request.query.get("membership")
    not_membership = request.query.get("not_membership")
    ids = [event_id for (event_type, _), event_id in state.items() if event_type == "m.room.member"]
    found = await svc.rooms.get_events(ids)
    chunk = []
    for event_id in ids:
        event = found.get(event_id)
        if event is None:
            continue
        current = event.pdu.get("content", {}).get("membership")
        if (membership is None or current == membership) and (
            not_membership is None or current != not_membership
        ):
            chunk.append(event)
    return json_response({"chunk": await svc.history.serialize(chunk, None)})


@routes.get(R + "/joined_members")
async def joined_members(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    room = await svc.rooms.require_joined(request.match_info["room_id"], who.user_id)
    joined: dict[str, Any] = {}
    ids = [
        room.state[("m.room.member", u)]
        for u in room.joined()
        if ("m.room.member", u) in room.state
    ]
    for event in (await svc.rooms.get_events(ids)).values():
        content = event.pdu.get("content", {})
        # The spec types both as strings: leave out what is unset (or not a string).
        joined[event.state_key or ""] = {
            key: content[field]
            for key, field in (("display_name", "displayname"), ("avatar_url", "avatar_url"))
            if isinstance(content.get(field), str)
        }
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
        )
    )


@routes.get(R + "/event/{event_id}")
async def get_event(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    room = await svc.history.check_can_read(who.user_id, request.match_info["room_id"])
    event = await svc.rooms.get_event(request.match_info["event_id"])
    if (
        event is None
        or event.room_id != room.room_id
        or not await svc.history.visible(who.user_id, room, [event])
    ):
        raise not_found("Event not found")
    return json_response((await svc.history.serialize([event], (who.user_id, who.device_id)))[0])


@routes.put(R + "/redact/{event_id}/{txn_id}")
async def redact(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    body = await read_json(request, allow_empty=True)
    event_id = await svc.handler.redact(
        who.user_id,
        who.device_id,
        request.match_info["room_id"],
        request.match_info["event_id"],
        optional_string(body, "reason"),
        request.match_info["txn_id"],
    )
    return json_response({"event_id": event_id})
