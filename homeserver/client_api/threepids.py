"""Third-party identifiers (email, phone): this server keeps none and uses no identity
server, so ``/capabilities`` says ``m.3pid_changes: {enabled: false}`` and every request to
add, bind or verify one is refused with Synapse's answer for a server configured so
(``enable_3pid_changes: false``, no email or SMS sending).  ``GET /account/3pid`` (always
empty) is in :mod:`homeserver.client_api.tags`."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from homeserver.client_api.common import requester
from homeserver.common.errors import MatrixError
from homeserver.common.http import json_response, read_json

routes = web.RouteTableDef()
V3 = "/_matrix/client/v3"


def _changes_disabled() -> MatrixError:
    return MatrixError(400, "M_FORBIDDEN", "3PID changes are disabled on this server")


def _medium_not_supported(message: str) -> MatrixError:
    return MatrixError(400, "M_THREEPID_MEDIUM_NOT_SUPPORTED", message)


@routes.post(V3 + "/account/3pid")
@routes.post(V3 + "/account/3pid/add")
@routes.post(V3 + "/account/3pid/delete")
@routes.post(V3 + "/account/3pid/email/requestToken")
@routes.post(V3 + "/account/3pid/msisdn/requestToken")
async def change(request: web.Request) -> web.Response:
    raise _changes_disabled()


@routes.post(V3 + "/account/3pid/bind")
async def bind(request: web.Request) -> web.Response:
    await requester(request)
    raise MatrixError(400, "M_SERVER_NOT_TRUSTED", "This server does not use identity servers")


@routes.post(V3 + "/account/3pid/unbind")
async def unbind(request: web.Request) -> web.Response:
    # Nothing was bound through this server: as Synapse without a known identity server.
    await requester(request)
    await read_json(request)
    return json_response({"id_server_unbind_result": "no-support"})


_REFUSED_TOKENS = {
    "/register/email/requestToken": "Email-based registration has been disabled on this server",
    "/register/msisdn/requestToken": (
        "Registration by phone number is not supported on this homeserver"
    ),
    "/account/password/email/requestToken": (
        "Email-based password resets have been disabled on this server"
    ),
    "/account/password/msisdn/requestToken": (
        "Password reset by phone number is not supported on this homeserver"
    ),
}


async def _refused_token(request: web.Request) -> web.Response:
    raise _medium_not_supported(_REFUSED_TOKENS[request.path.removeprefix(V3)])


for _path in _REFUSED_TOKENS:
    routes.post(V3 + _path)(_refused_token)


def refuse_third_party_invites(body: dict[str, Any], *, create: bool) -> None:
    """Invites by email or phone need an identity server, which this server does not use:
    403 (``/invite`` with ``medium``/``address``) or 400 (``createRoom``'s ``invite_3pid``)
    ``M_FORBIDDEN``, before anything happens."""
    if create:
        refused, status = bool(body.get("invite_3pid")), 400
    else:
        refused = "user_id" not in body and any(k in body for k in ("medium", "address"))
        status = 403
    if refused:
        raise MatrixError(
            status,
            "M_FORBIDDEN",
            "Inviting by email or phone number is not supported: this server uses no "
            "identity server. Invite by Matrix user ID instead.",
        )
