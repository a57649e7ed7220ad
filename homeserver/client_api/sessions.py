"""Refreshing access tokens (``/refresh``) and login tokens (``/login/get_token``)."""

from __future__ import annotations

from aiohttp import web

from homeserver.client_api.account import password_uia
from homeserver.client_api.common import requester, services
from homeserver.common.errors import unrecognized
from homeserver.common.http import json_response, read_json, required_string

routes = web.RouteTableDef()


@routes.post("/_matrix/client/v3/refresh")
async def refresh(request: web.Request) -> web.Response:
    svc = services(request)
    body = await read_json(request)
    issued = await svc.accounts.refresh(required_string(body, "refresh_token"))
    return json_response(issued.as_json())


@routes.post("/_matrix/client/v1/login/get_token")
async def get_login_token(request: web.Request) -> web.Response:
    svc = services(request)
    settings = svc.config.sessions
    if not settings.login_token_enabled:
        # Synapse has no such endpoint then; the spec lets a server go without it.
        raise unrecognized()
    who = await requester(request)
    body = await read_json(request, allow_empty=True)
    if settings.login_token_require_ui_auth:
        await password_uia(svc, who, body)
    token, lifetime = await svc.accounts.tokens.new_login_token(who.user_id)
    return json_response({"login_token": token, "expires_in_ms": lifetime})
