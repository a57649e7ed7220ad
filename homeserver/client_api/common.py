"""What every handler needs: the services, and who is asking."""

from __future__ import annotations

from aiohttp import web

from homeserver.accounts.checks import ClientInfo
from homeserver.accounts.service import Requester
from homeserver.client_api.services import SERVICES, Services
from homeserver.common.http import ZONE, bearer_token


def services(request: web.Request) -> Services:
    return request.app[SERVICES]


REQUESTER = web.RequestKey("requester", Requester)


async def requester(request: web.Request) -> Requester:
    """The user and device of the request's access token (401 without a valid one), once
    the features' access checks allow its use."""
    if REQUESTER in request:
        return request[REQUESTER]
    accounts = services(request).accounts
    found = await accounts.authenticate(bearer_token(request))
    await accounts.check_access(found, client_info(request))
    request[REQUESTER] = found
    return found


def client_ip(request: web.Request) -> str | None:
    return request.remote


def client_info(request: web.Request) -> ClientInfo:
    """Where the request comes from: its address, user agent and listener zone."""
    zone = request.app.get(ZONE, "default")
    return ClientInfo(request.remote, request.headers.get("User-Agent"), zone)
