"""Authenticated routes of the membership handshakes: make_/send_ join, leave and knock,
and invites."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from federation.server.http import (
    F1,
    F2,
    FederationServer,
    endpoint,
    json_response,
    object_body,
    pdu_body,
)


async def _make(
    request: web.Request, server: FederationServer, origin: str, membership: str
) -> web.StreamResponse:
    versions = request.query.getall("ver", [])
    return json_response(
        await server.handler.on_make_membership(
            origin,
            membership,
            request.match_info["room_id"],
            request.match_info["user_id"],
            versions,
        )
    )


@endpoint("GET", F1 + "/make_join/{room_id}/{user_id}")
async def make_join(
    request: web.Request, server: FederationServer, origin: str, body: Any
) -> web.StreamResponse:
    return await _make(request, server, origin, "join")


@endpoint("GET", F1 + "/make_leave/{room_id}/{user_id}")
async def make_leave(
    request: web.Request, server: FederationServer, origin: str, body: Any
) -> web.StreamResponse:
    return await _make(request, server, origin, "leave")


@endpoint("GET", F1 + "/make_knock/{room_id}/{user_id}")
async def make_knock(
    request: web.Request, server: FederationServer, origin: str, body: Any
) -> web.StreamResponse:
    return await _make(request, server, origin, "knock")


async def _send(
    request: web.Request, server: FederationServer, origin: str, body: Any, membership: str
) -> dict[str, Any]:
    omit = request.query.get("omit_members", "false") == "true"
    return await server.handler.on_send_membership(
        origin,
        membership,
        request.match_info["room_id"],
        request.match_info["event_id"],
        pdu_body(body),
        omit,
    )


@endpoint("PUT", F2 + "/send_join/{room_id}/{event_id}")
async def send_join(
    request: web.Request, server: FederationServer, origin: str, body: Any
) -> web.StreamResponse:
    return json_response(await _send(request, server, origin, body, "join"))


@endpoint("PUT", F1 + "/send_join/{room_id}/{event_id}")
async def send_join_v1(
    request: web.Request, server: FederationServer, origin: str, body: Any
) -> web.StreamResponse:
    return json_response([200, await _send(request, server, origin, body, "join")])


@endpoint("PUT", F2 + "/send_leave/{room_id}/{event_id}")
async def send_leave(
    request: web.Request, server: FederationServer, origin: str, body: Any
) -> web.StreamResponse:
    return json_response(await _send(request, server, origin, body, "leave"))


@endpoint("PUT", F1 + "/send_leave/{room_id}/{event_id}")
async def send_leave_v1(
    request: web.Request, server: FederationServer, origin: str, body: Any
) -> web.StreamResponse:
    return json_response([200, await _send(request, server, origin, body, "leave")])


@endpoint("PUT", F1 + "/send_knock/{room_id}/{event_id}")
async def send_knock(
    request: web.Request, server: FederationServer, origin: str, body: Any
) -> web.StreamResponse:
    return json_response(await _send(request, server, origin, body, "knock"))


@endpoint("PUT", F2 + "/invite/{room_id}/{event_id}")
async def invite(
    request: web.Request, server: FederationServer, origin: str, body: Any
) -> web.StreamResponse:
    return json_response(
        await server.handler.on_invite(
            origin, request.match_info["room_id"], request.match_info["event_id"], object_body(body)
        )
    )


@endpoint("PUT", F1 + "/invite/{room_id}/{event_id}")
async def invite_v1(
    request: web.Request, server: FederationServer, origin: str, body: Any
) -> web.StreamResponse:
    """The deprecated v1 form: the body is the event itself and names no room version, so
    the room is taken to be of version 1, as Synapse does; this node has no such rooms, so
    the answer is the v2 form's refusal of an unsupported version (400
    M_INCOMPATIBLE_ROOM_VERSION).  A success would be ``[200, {"event": ...}]``."""
    pdu = object_body(body)
    unsigned = pdu.get("unsigned")
    stripped = unsigned.get("invite_room_state", []) if isinstance(unsigned, dict) else []
    wrapped = {"room_version": "1", "event": pdu, "invite_room_state": stripped}
    answer = await server.handler.on_invite(
        origin, request.match_info["room_id"], request.match_info["event_id"], wrapped
    )
    return json_response([200, answer])
