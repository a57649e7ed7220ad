"""End-to-end encryption keys: upload, query, claim, changes, cross-signing, key backup."""

from __future__ import annotations

from aiohttp import web

from homeserver.client_api.account import password_uia
from homeserver.client_api.common import requester, services
from homeserver.errors import MatrixError, not_found
from homeserver.http import json_response, read_json
from homeserver.rooms.history import parse_stream_token

routes = web.RouteTableDef()
C = "/_matrix/client/v3"


@routes.post(C + "/keys/upload")
async def upload(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    body = await read_json(request, allow_empty=True)
    counts = await svc.keys.upload(who, body)
    return json_response({"one_time_key_counts": counts})


@routes.post(C + "/keys/query")
async def query(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    body = await read_json(request)
    return json_response(await svc.keys.query(who, body))


@routes.post(C + "/keys/claim")
async def claim(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    body = await read_json(request)
    return json_response(await svc.keys.claim(who, body))


@routes.get(C + "/keys/changes")
async def changes(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    start, end = request.query.get("from"), request.query.get("to")
    if start is None or end is None:
        raise MatrixError(400, "M_MISSING_PARAM", "'from' and 'to' are required")
    after, upto = parse_stream_token(start), parse_stream_token(end)
    upto = min(upto, svc.db.stream.current)
    if upto <= after:
        return json_response({"changed": [], "left": []})
    changed, left = await svc.keys.device_list_delta(who.user_id, after, upto)
    return json_response({"changed": changed, "left": left})


@routes.post(C + "/keys/device_signing/upload")
async def upload_cross_signing(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    body = await read_json(request, allow_empty=True)
    if await svc.keys.cross_signing_needs_uia(who, body):
        await password_uia(svc, who, body)
    await svc.keys.upload_cross_signing(who, body)
    return json_response({})


@routes.post(C + "/keys/signatures/upload")
async def upload_signatures(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    body = await read_json(request)
    return json_response(await svc.keys.upload_signatures(who, body))


# Server-side key backup is not implemented: there is never a current backup version.


@routes.get(C + "/room_keys/version")
async def backup_version(request: web.Request) -> web.Response:
    await requester(request)
    raise not_found("No current backup version")


@routes.get(C + "/room_keys/version/{version}")
async def backup_version_by_id(request: web.Request) -> web.Response:
    await requester(request)
    raise not_found("Unknown backup version")


@routes.post(C + "/room_keys/version")
async def create_backup(request: web.Request) -> web.Response:
    await requester(request)
    raise MatrixError(400, "M_UNRECOGNIZED", "Server-side key backup is not supported")
