"""The admin API under ``/_kairan/admin/v1/``: users, devices, rooms, registration tokens.

Only accounts with the admin flag (or listed under ``admins`` in the config) may use it:
401 without a valid access token, 403 ``M_FORBIDDEN`` for everyone else.  The handlers
check the shape of the request and call the admin operations (:mod:`homeserver.admin.ops`,
:mod:`homeserver.admin.tokens`), which the ``kairan`` command uses too.
"""

from __future__ import annotations

import platform
import re
from importlib import metadata
from typing import Any

from aiohttp import web

from homeserver.accounts.passwords import check_password_length
from homeserver.client_api.common import requester, services
from homeserver.client_api.services import Services
from homeserver.common.errors import MatrixError, bad_json, invalid_param
from homeserver.common.http import json_response, query_int, read_json

routes = web.RouteTableDef()
PREFIX = "/_kairan/admin/v1"
MAX_PAGE = 1000


async def _admin(request: web.Request) -> Services:
    """The services, once the requester is known to be an admin."""
    svc = services(request)
    svc.accounts.require_admin(await requester(request))
    return svc


def _page(request: web.Request, total: int, items: list[Any], key: str) -> web.Response:
    """A page of ``items`` with ``total`` and, when more follow, ``next_token``."""
    start = query_int(request, "from", 0)
    body: dict[str, Any] = {key: items, "total": total}
    if start + len(items) < total:
        body["next_token"] = str(start + len(items))
    return json_response(body)


def _paging(request: web.Request) -> tuple[int, int]:
    return query_int(request, "from", 0), query_int(
        request, "limit", 100, minimum=1, maximum=MAX_PAGE
    )


def _optional(body: dict[str, Any], key: str, kind: type) -> Any:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise bad_json(f"'{key}' must be {'a boolean' if kind is bool else kind.__name__}")
    return value


def _query_bool(request: web.Request, name: str) -> bool | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    if raw not in ("true", "false"):
        raise invalid_param(f"'{name}' must be true or false")
    return raw == "true"


# ---------------------------------------------------------------------- server


@routes.get(PREFIX + "/server_version")
async def server_version(request: web.Request) -> web.Response:
    await _admin(request)
    try:
        version = metadata.version("kairan")
    except metadata.PackageNotFoundError:
        version = "unknown"
    return json_response(
        {"server_version": f"Kairan {version}", "python_version": platform.python_version()}
    )


# ---------------------------------------------------------------------- users


@routes.get(PREFIX + "/users")
async def list_users(request: web.Request) -> web.Response:
    """Accounts by user ID; ``name`` filters on ID or display name, ``deactivated=false``
    leaves deactivated accounts out."""
    svc = await _admin(request)
    start, limit = _paging(request)
    users, total = await svc.admin.find_users(
        start,
        limit,
        name=request.query.get("name") or None,
        include_deactivated=_query_bool(request, "deactivated") is not False,
    )
    return _page(request, total, users, "users")


@routes.get(PREFIX + "/users/{user_id}")
async def get_user(request: web.Request) -> web.Response:
    svc = await _admin(request)
    return json_response(await svc.admin.get_user(request.match_info["user_id"]))


@routes.put(PREFIX + "/users/{user_id}")
async def put_user(request: web.Request) -> web.Response:
    """Create or modify an account: password, displayname, admin, deactivated."""
    svc = await _admin(request)
    user_id = request.match_info["user_id"]
    body = await read_json(request, allow_empty=True)
    logout = body.get("logout_devices", True)
    if not isinstance(logout, bool):
        raise bad_json("'logout_devices' must be a boolean")
    password = _optional(body, "password", str)
    if password is not None:
        # As Synapse's admin API: the length limit, not the policy (the admin decides).
        check_password_length(password)
    created = await svc.admin.modify_user(
        user_id,
        password=password,
        displayname=_optional(body, "displayname", str),
        admin=_optional(body, "admin", bool),
        deactivated=_optional(body, "deactivated", bool),
        logout_devices=logout,
    )
    return json_response(await svc.admin.get_user(user_id), status=201 if created else 200)


@routes.post(PREFIX + "/users/{user_id}/deactivate")
async def deactivate_user(request: web.Request) -> web.Response:
    svc = await _admin(request)
    await read_json(request, allow_empty=True)
    await svc.admin.deactivate_user(request.match_info["user_id"])
    return json_response({})


@routes.get(PREFIX + "/users/{user_id}/devices")
async def list_devices(request: web.Request) -> web.Response:
    svc = await _admin(request)
    devices = await svc.admin.list_devices(request.match_info["user_id"])
    return json_response({"devices": devices, "total": len(devices)})


@routes.delete(PREFIX + "/users/{user_id}/devices/{device_id}")
async def delete_device(request: web.Request) -> web.Response:
    svc = await _admin(request)
    await svc.admin.delete_device(request.match_info["user_id"], request.match_info["device_id"])
    return json_response({})


# ---------------------------------------------------------------------- rooms


@routes.get(PREFIX + "/rooms")
async def list_rooms(request: web.Request) -> web.Response:
    svc = await _admin(request)
    start, limit = _paging(request)
    rooms = await svc.admin.list_rooms()
    return _page(request, len(rooms), rooms[start : start + limit], "rooms")


@routes.get(PREFIX + "/rooms/{room_id}")
async def get_room(request: web.Request) -> web.Response:
    svc = await _admin(request)
    return json_response(await svc.admin.room_details(request.match_info["room_id"]))


@routes.get(PREFIX + "/rooms/{room_id}/members")
async def room_members(request: web.Request) -> web.Response:
    svc = await _admin(request)
    details = await svc.admin.room_details(request.match_info["room_id"])
    joined = [user for user, membership in details["members"].items() if membership == "join"]
    return json_response({"members": joined, "total": len(joined)})


@routes.get(PREFIX + "/rooms/{room_id}/state")
async def room_state(request: web.Request) -> web.Response:
    svc = await _admin(request)
    details = await svc.admin.room_details(request.match_info["room_id"])
    return json_response({"state": details["state"]})


@routes.delete(PREFIX + "/rooms/{room_id}")
async def shutdown_room(request: web.Request) -> web.Response:
    """Shut the room down: closed to joins, every local member leaves, out of the directory."""
    svc = await _admin(request)
    await read_json(request, allow_empty=True)
    return json_response(await svc.admin.shutdown_room(request.match_info["room_id"]))


# ---------------------------------------------------------------------- registration tokens


def _limits(body: dict[str, Any]) -> dict[str, Any]:
    """``uses_allowed``/``expiry_time`` present in ``body`` (null clears a limit)."""
    limits: dict[str, Any] = {}
    for key in ("uses_allowed", "expiry_time"):
        if key in body:
            limits[key] = _optional(body, key, int)
    return limits


@routes.get(PREFIX + "/registration_tokens")
async def list_tokens(request: web.Request) -> web.Response:
    svc = await _admin(request)
    tokens = await svc.tokens.list_registration_tokens(_query_bool(request, "valid"))
    return json_response({"registration_tokens": tokens})


@routes.post(PREFIX + "/registration_tokens/new")
async def create_token(request: web.Request) -> web.Response:
    svc = await _admin(request)
    body = await read_json(request, allow_empty=True)
    length = _optional(body, "length", int)
    created = await svc.tokens.create_registration_token(
        _optional(body, "token", str),
        length=16 if length is None else length,
        **_limits(body),
    )
    return json_response(created)


@routes.get(PREFIX + "/registration_tokens/{token}")
async def get_token(request: web.Request) -> web.Response:
    svc = await _admin(request)
    return json_response(await svc.tokens.get_registration_token(request.match_info["token"]))


@routes.put(PREFIX + "/registration_tokens/{token}")
async def update_token(request: web.Request) -> web.Response:
    svc = await _admin(request)
    body = await read_json(request)
    unknown = sorted(set(body) - {"uses_allowed", "expiry_time"})
    if unknown:
        raise MatrixError(400, "M_INVALID_PARAM", f"Unknown fields: {', '.join(unknown)}")
    updated = await svc.tokens.update_registration_token(
        request.match_info["token"], **_limits(body)
    )
    return json_response(updated)


@routes.delete(PREFIX + "/registration_tokens/{token}")
async def delete_token(request: web.Request) -> web.Response:
    svc = await _admin(request)
    await svc.tokens.delete_registration_token(request.match_info["token"])
    return json_response({})


# ---------------------------------------------------------------------- media


@routes.post(PREFIX + "/purge_media_cache")
async def purge_media_cache(request: web.Request) -> web.Response:
    """Remove other servers' media not accessed since ``before_ts`` (ms) from the cache, as
    Synapse's ``purge_media_cache``; it is fetched again when someone asks for it."""
    svc = await _admin(request)
    raw = request.query.get("before_ts")
    if raw is None:
        raise MatrixError(400, "M_MISSING_PARAM", "Missing query parameter 'before_ts'")
    if not re.fullmatch(r"-?[0-9]{1,19}", raw):
        raise invalid_param("Query parameter before_ts must be an integer")
    before_ts = int(raw)
    if before_ts < 0:
        raise invalid_param("Query parameter before_ts must be a positive integer.")
    if before_ts < 30_000_000_000:  # December 1970 in ms, but the year 2920 in seconds
        raise invalid_param(
            "Query parameter before_ts you provided is from the year 1970. "
            "Double check that you are providing a timestamp in milliseconds."
        )
    deleted = await svc.admin.purge_media_cache(min(before_ts, 2**62))
    return json_response({"deleted": deleted})
