"""Device management: list, show, rename and delete (with UIA) the user's devices."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from homeserver.accounts.service import Device
from homeserver.client_api.account import password_uia
from homeserver.client_api.common import requester, services
from homeserver.common.errors import bad_json, not_found
from homeserver.common.http import json_response, read_json

routes = web.RouteTableDef()
C = "/_matrix/client/v3"


def _device_json(device: Device) -> dict[str, Any]:
    """The device as the spec shows it: fields that are not known are left out, not null."""
    body: dict[str, Any] = {"device_id": device.device_id}
    if device.display_name is not None:
        body["display_name"] = device.display_name
    if device.last_seen_ip is not None:
        body["last_seen_ip"] = device.last_seen_ip
    if device.last_seen_ts is not None:
        body["last_seen_ts"] = device.last_seen_ts
    return body


@routes.get(C + "/devices")
async def list_devices(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    found = await svc.accounts.devices(who.user_id)
    return json_response({"devices": [_device_json(d) for d in found]})


@routes.get(C + "/devices/{device_id}")
async def get_device(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    found = await svc.accounts.device(who.user_id, request.match_info["device_id"])
    if found is None:
        raise not_found("Unknown device")
    return json_response(_device_json(found))


@routes.put(C + "/devices/{device_id}")
async def rename_device(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    body = await read_json(request, allow_empty=True)
    name = body.get("display_name")
    if name is None:
        # Nothing to change, but the device must exist.
        if await svc.accounts.device(who.user_id, request.match_info["device_id"]) is None:
            raise not_found("Unknown device")
        return json_response({})
    if not isinstance(name, str) or len(name) > 1000:
        raise bad_json("'display_name' must be a string of at most 1000 characters")
    await svc.keys.rename_device(who, request.match_info["device_id"], name)
    return json_response({})


@routes.delete(C + "/devices/{device_id}")
async def delete_device(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    body = await read_json(request, allow_empty=True)
    device_id = request.match_info["device_id"]
    if await svc.accounts.device(who.user_id, device_id) is None:
        raise not_found("Unknown device")
    await password_uia(svc, who, body)
    await svc.keys.delete_devices(who.user_id, [device_id], strict=True)
    return json_response({})


@routes.post(C + "/delete_devices")
async def delete_devices(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    body = await read_json(request)
    device_ids = body.get("devices")
    if not isinstance(device_ids, list) or not all(isinstance(d, str) for d in device_ids):
        raise bad_json("'devices' must be a list of device IDs")
    await password_uia(svc, who, body)
    await svc.keys.delete_devices(who.user_id, list(dict.fromkeys(device_ids)), strict=False)
    return json_response({})
