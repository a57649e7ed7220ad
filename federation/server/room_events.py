"""Authenticated routes of rooms' events: transactions, single events, state, auth
chains, backfill and missing events."""

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


@endpoint("PUT", F1 + "/send/{txn_id}")
async def send_transaction(
    request: web.Request, server: FederationServer, origin: str, body: Any
) -> web.StreamResponse:
    body = object_body(body)
    if body.get("origin") not in (None, origin):
        raise MatrixError(400, "M_BAD_JSON", "transaction origin does not match the request's")
    pdus, edus = body.get("pdus", []), body.get("edus", [])
    if not isinstance(pdus, list) or not isinstance(edus, list):
        raise MatrixError(400, "M_BAD_JSON", "pdus and edus must be lists")
    if len(pdus) > 50 or len(edus) > 100:
        raise MatrixError(400, "M_BAD_JSON", "at most 50 PDUs and 100 EDUs per transaction")
    return json_response(
        await server.handler.on_transaction(origin, request.match_info["txn_id"], body)
    )


@endpoint("GET", F1 + "/event/{event_id}")
async def get_event(
    request: web.Request, server: FederationServer, origin: str, body: Any
) -> web.StreamResponse:
    return json_response(await server.handler.on_get_event(origin, request.match_info["event_id"]))


@endpoint("GET", F1 + "/state/{room_id}")
async def get_state(
    request: web.Request, server: FederationServer, origin: str, body: Any
) -> web.StreamResponse:
    return json_response(
        await server.handler.on_state(
            origin, request.match_info["room_id"], _event_id_param(request), False
        )
    )


@endpoint("GET", F1 + "/state_ids/{room_id}")
async def get_state_ids(
    request: web.Request, server: FederationServer, origin: str, body: Any
) -> web.StreamResponse:
    return json_response(
        await server.handler.on_state(
            origin, request.match_info["room_id"], _event_id_param(request), True
        )
    )


def _event_id_param(request: web.Request) -> str:
    event_id = request.query.get("event_id")
    if not event_id:
        raise MatrixError(400, "M_MISSING_PARAM", "Missing event_id")
    return event_id


@endpoint("GET", F1 + "/event_auth/{room_id}/{event_id}")
async def event_auth(
    request: web.Request, server: FederationServer, origin: str, body: Any
) -> web.StreamResponse:
    return json_response(
        await server.handler.on_event_auth(
            origin, request.match_info["room_id"], request.match_info["event_id"]
        )
    )


@endpoint("GET", F1 + "/backfill/{room_id}")
async def backfill(
    request: web.Request, server: FederationServer, origin: str, body: Any
) -> web.StreamResponse:
    event_ids = request.query.getall("v", [])
    try:
        limit = int(request.query.get("limit", "10"))
    except ValueError:
        raise MatrixError(400, "M_INVALID_PARAM", "limit must be an integer") from None
    if not event_ids:
        raise MatrixError(400, "M_MISSING_PARAM", "Missing v")
    return json_response(
        await server.handler.on_backfill(
            origin, request.match_info["room_id"], event_ids, max(1, min(limit, 100))
        )
    )


@endpoint("POST", F1 + "/get_missing_events/{room_id}")
async def get_missing_events(
    request: web.Request, server: FederationServer, origin: str, body: Any
) -> web.StreamResponse:
    return json_response(
        await server.handler.on_get_missing_events(
            origin, request.match_info["room_id"], object_body(body)
        )
    )
