"""End-to-end encryption keys: upload, query, claim, changes, cross-signing, key backup."""

from __future__ import annotations

from aiohttp import web

from homeserver.client_api.account import password_uia
from homeserver.client_api.common import requester, services
from homeserver.common.errors import MatrixError
from homeserver.common.http import json_response, read_json
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
    upto = min(upto, svc.sync.current_token().position)
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


# ------------------------------------------------------------------ server-side key backup

RK = C + "/room_keys"


@routes.post(RK + "/version")
async def create_backup(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    body = await read_json(request)
    return json_response({"version": await svc.keys.backup.create_version(who.user_id, body)})


@routes.get(RK + "/version")
async def current_backup(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    return json_response(await svc.keys.backup.get_version(who.user_id, None))


@routes.get(RK + "/version/{version}")
async def get_backup(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    version = request.match_info["version"]
    return json_response(await svc.keys.backup.get_version(who.user_id, version))


@routes.put(RK + "/version/{version}")
async def update_backup(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    body = await read_json(request)
    await svc.keys.backup.update_version(who.user_id, request.match_info["version"], body)
    return json_response({})


@routes.delete(RK + "/version/{version}")
async def delete_backup(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    await svc.keys.backup.delete_version(who.user_id, request.match_info["version"])
    return json_response({})


def _key_path(request: web.Request) -> dict[str, str | None]:
    return {
        "room_id": request.match_info.get("room_id"),
        "session_id": request.match_info.get("session_id"),
    }


KEY_PATHS = (RK + "/keys", RK + "/keys/{room_id}", RK + "/keys/{room_id}/{session_id}")


async def put_backup_keys(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    body = await read_json(request)
    version = request.query.get("version")
    result = await svc.keys.backup.put_keys(who.user_id, version, body, **_key_path(request))
    return json_response(result)


async def get_backup_keys(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    version = request.query.get("version")
    return json_response(await svc.keys.backup.get_keys(who.user_id, version, **_key_path(request)))


async def delete_backup_keys(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    version = request.query.get("version")
    return json_response(
        await svc.keys.backup.delete_keys(who.user_id, version, **_key_path(request))
    )


for _path in KEY_PATHS:
    routes.put(_path)(put_backup_keys)
    routes.get(_path)(get_backup_keys)
    routes.delete(_path)(delete_backup_keys)
