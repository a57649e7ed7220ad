"""Registration, login, logout, whoami, password changes, deactivation."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from homeserver.accounts.service import Requester
from homeserver.accounts.uia import Session
from homeserver.client_api.common import client_info, client_ip, requester, services
from homeserver.client_api.services import Services
from homeserver.common.errors import MatrixError, bad_json, forbidden
from homeserver.common.http import (
    bearer_token,
    json_response,
    optional_string,
    read_json,
    required_string,
)

routes = web.RouteTableDef()

PASSWORD = "m.login.password"
LOGIN_TOKEN = "m.login.token"
TOKEN_STAGE = "m.login.registration_token"
DUMMY = "m.login.dummy"


def _user_id_from_identifier(svc: Services, body: dict[str, Any]) -> str:
    identifier = body.get("identifier")
    user = None
    if isinstance(identifier, dict):
        if identifier.get("type") != "m.id.user":
            raise MatrixError(400, "M_UNKNOWN", "Only m.id.user identifiers are supported")
        user = identifier.get("user")
    elif "user" in body:
        user = body.get("user")
    if not isinstance(user, str) or not user:
        raise MatrixError(400, "M_MISSING_PARAM", "Missing user identifier")
    if user.startswith("@"):
        return user
    return svc.accounts.user_id(user.lower())


@routes.get("/_matrix/client/v3/login")
async def login_flows(request: web.Request) -> web.Response:
    # As Synapse without single sign-on: m.login.token is listed only when /login/get_token
    # hands its tokens out.
    flows: list[dict[str, object]] = [{"type": PASSWORD}]
    if services(request).config.sessions.login_token_enabled:
        flows.append({"type": LOGIN_TOKEN, "get_login_token": True})
    return json_response({"flows": flows})


def _wants_refresh_token(body: dict[str, Any]) -> bool:
    wanted = body.get("refresh_token", False)
    if not isinstance(wanted, bool):
        raise bad_json("refresh_token must be a boolean")
    return wanted


@routes.post("/_matrix/client/v3/login")
async def login(request: web.Request) -> web.Response:
    svc = services(request)
    body = await read_json(request)
    refreshable = _wants_refresh_token(body)
    if body.get("type") == PASSWORD:
        user_id = _user_id_from_identifier(svc, body)
        password = body.get("password")
        if not isinstance(password, str):
            raise bad_json("password must be a string")
        await svc.accounts.check_login_password(user_id, password, client_ip(request))
    elif body.get("type") == LOGIN_TOKEN:
        user_id = await svc.accounts.tokens.take_login_token(required_string(body, "token"))
    else:
        raise MatrixError(400, "M_UNKNOWN", "Unknown login type")
    issued = await svc.accounts.login_tokens(
        user_id,
        optional_string(body, "device_id"),
        optional_string(body, "initial_device_display_name"),
        client_ip(request),
        client=client_info(request),
        refreshable=refreshable,
    )
    return json_response(
        {
            "user_id": user_id,
            **issued.as_json(),
            "device_id": issued.device_id,
            "home_server": svc.config.server_name,
            "well_known": {"m.homeserver": {"base_url": svc.config.base_url}},
        }
    )


def _registration_flows(svc: Services) -> list[list[str]]:
    if svc.config.enable_registration and not svc.config.registration_requires_token:
        return [[DUMMY], [TOKEN_STAGE]]
    return [[TOKEN_STAGE]]


async def _check_registration_token(auth: dict[str, Any], session: Session, svc: Services) -> bool:
    token = auth.get("token")
    if not isinstance(token, str):
        raise MatrixError(400, "M_MISSING_PARAM", "Missing registration token")
    if not await svc.accounts.registration_token_usable(token):
        raise MatrixError(401, "M_FORBIDDEN", "Invalid registration token")
    session.data["registration_token"] = token
    return True


@routes.get("/_matrix/client/v3/register/available")
async def username_available(request: web.Request) -> web.Response:
    svc = services(request)
    username = request.query.get("username", "")
    if not await svc.accounts.username_available(username):
        raise MatrixError(400, "M_USER_IN_USE", "User ID already taken.")
    return json_response({"available": True})


@routes.post("/_matrix/client/v1/register/m.login.registration_token/validity")
async def token_validity(request: web.Request) -> web.Response:
    svc = services(request)
    token = request.query.get("token", "")
    return json_response({"valid": await svc.accounts.registration_token_valid(token)})


@routes.get("/_matrix/client/v1/register/m.login.registration_token/validity")
async def token_validity_get(request: web.Request) -> web.StreamResponse:
    return await token_validity(request)


@routes.post("/_matrix/client/v3/register")
async def register(request: web.Request) -> web.Response:
    svc = services(request)
    body = await read_json(request)
    kind = request.query.get("kind", "user")
    if kind != "user":
        raise MatrixError(403, "M_GUEST_ACCESS_FORBIDDEN", "Guest access is disabled")
    username = optional_string(body, "username")
    password = optional_string(body, "password")
    refreshable = _wants_refresh_token(body)
    if username is not None:
        username = username.lower()
        svc.accounts.check_localpart(username)
        if not await svc.accounts.username_available(username):
            raise MatrixError(400, "M_USER_IN_USE", "User ID already taken.")
    if password is not None:
        # Checked before user-interactive auth, as Synapse does, so that a client learns of
        # a refused password before its user goes through the stages.
        svc.accounts.check_new_password(password)

    async def dummy(auth: dict[str, Any], session: Session) -> bool:
        return True

    async def token_stage(auth: dict[str, Any], session: Session) -> bool:
        return await _check_registration_token(auth, session, svc)

    session = await svc.uia.authenticate(
        body, _registration_flows(svc), {DUMMY: dummy, TOKEN_STAGE: token_stage}
    )
    if username is None:
        username = "user" + svc.accounts.random_suffix()
    if password is None:
        raise MatrixError(400, "M_MISSING_PARAM", "Missing password")
    user_id = await svc.accounts.create_user(username, password)
    token = session.data.get("registration_token")
    if isinstance(token, str):
        await svc.accounts.use_registration_token(token)
    response: dict[str, Any] = {"user_id": user_id, "home_server": svc.config.server_name}
    if body.get("inhibit_login") is not True:
        issued = await svc.accounts.login_tokens(
            user_id,
            optional_string(body, "device_id"),
            optional_string(body, "initial_device_display_name"),
            client_ip(request),
            client=client_info(request),
            refreshable=refreshable,
        )
        response.update(issued.as_json(), device_id=issued.device_id)
    return json_response(response)


@routes.post("/_matrix/client/v3/logout")
async def logout(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request, allow_locked=True)
    await svc.accounts.logout(bearer_token(request))
    # The device is gone: its keys too, and other users (and servers) learn of it.
    await svc.keys.devices_removed(who.user_id, [who.device_id])
    return json_response({})


@routes.post("/_matrix/client/v3/logout/all")
async def logout_all(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request, allow_locked=True)
    device_ids = [d.device_id for d in await svc.accounts.devices(who.user_id)]
    await svc.accounts.logout_all(who.user_id)
    await svc.keys.devices_removed(who.user_id, device_ids)
    return json_response({})


@routes.get("/_matrix/client/v3/account/whoami")
async def whoami(request: web.Request) -> web.Response:
    who = await requester(request)
    return json_response({"user_id": who.user_id, "device_id": who.device_id, "is_guest": False})


async def password_uia(svc: Services, who: Requester, body: dict[str, Any]) -> None:
    """UIA with the user's current password (for password changes, device deletion...)."""

    async def password_stage(auth: dict[str, Any], session: Session) -> bool:
        claimed = (
            _user_id_from_identifier(svc, auth)
            if ("identifier" in auth or "user" in auth)
            else who.user_id
        )
        if claimed != who.user_id:
            raise forbidden("You can only authenticate as yourself")
        password = auth.get("password")
        return isinstance(password, str) and await svc.accounts.check_password_stage(
            who.user_id, password
        )

    await svc.uia.authenticate(body, [[PASSWORD]], {PASSWORD: password_stage})


@routes.post("/_matrix/client/v3/account/password")
async def change_password(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    body = await read_json(request)
    new_password = optional_string(body, "new_password")
    if new_password is not None:
        svc.accounts.check_new_password(new_password, too_long_errcode="M_BAD_JSON")
    await password_uia(svc, who, body)
    new_password = required_string(body, "new_password")
    await svc.accounts.set_password(
        who.user_id,
        new_password,
        logout_devices=body.get("logout_devices", True) is not False,
        keep_device=who.device_id,
    )
    return json_response({})


@routes.post("/_matrix/client/v3/account/deactivate")
async def deactivate(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    body = await read_json(request, allow_empty=True)
    await password_uia(svc, who, body)
    await svc.accounts.deactivate(who.user_id)
    return json_response({"id_server_unbind_result": "no-support"})
