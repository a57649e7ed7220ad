"""Server administration of the Client-Server API: ``whois`` and account locking and
suspension (Matrix 1.18).  Authorisation comes before any lookup, as the spec says."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from homeserver.client_api.common import requester, services
from homeserver.common.errors import bad_json, forbidden, invalid_param
from homeserver.common.http import json_response, read_json

routes = web.RouteTableDef()


@routes.get("/_matrix/client/v3/admin/whois/{user_id}")
async def whois(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    user_id = request.match_info["user_id"]
    if user_id != who.user_id and not who.is_admin:
        raise forbidden("You are not a server admin")
    if not svc.accounts.is_local(user_id):
        raise invalid_param("Can only whois a local user")
    devices: dict[str, Any] = {}
    for device in await svc.accounts.devices(user_id):
        connections = []
        if device.last_seen_ts is not None:
            connection: dict[str, Any] = {"last_seen": device.last_seen_ts}
            if device.last_seen_ip is not None:
                connection["ip"] = device.last_seen_ip
            if device.last_seen_user_agent is not None:  # as Synapse
                connection["user_agent"] = device.last_seen_user_agent
            connections.append(connection)
        devices[device.device_id] = {"sessions": [{"connections": connections}]}
    return json_response({"user_id": user_id, "devices": devices})


async def _moderate(request: web.Request, field: str) -> web.Response:
    svc = services(request)
    who = await requester(request)
    svc.accounts.require_admin(who)
    user_id = request.match_info["user_id"]
    change: bool | None = None
    if request.method == "PUT":
        body = await read_json(request)
        change = body.get(field)
        if not isinstance(change, bool):
            raise bad_json(f"'{field}' must be a boolean")
    user = await svc.accounts.moderate(user_id, by=who, **{field: change})
    return json_response({field: getattr(user, field)})


@routes.get("/_matrix/client/v1/admin/lock/{user_id}")
@routes.put("/_matrix/client/v1/admin/lock/{user_id}")
async def lock(request: web.Request) -> web.Response:
    return await _moderate(request, "locked")


@routes.get("/_matrix/client/v1/admin/suspend/{user_id}")
@routes.put("/_matrix/client/v1/admin/suspend/{user_id}")
async def suspend(request: web.Request) -> web.Response:
    return await _moderate(request, "suspended")
