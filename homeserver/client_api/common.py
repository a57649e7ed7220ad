"""What every handler needs: the services, and who is asking."""

from __future__ import annotations

from aiohttp import web

from homeserver.accounts.service import Requester
from homeserver.client_api.services import SERVICES, Services
from homeserver.common.http import bearer_token


def services(request: web.Request) -> Services:
    return request.app[SERVICES]


REQUESTER = web.RequestKey("requester", Requester)


async def requester(request: web.Request) -> Requester:
    """The user and device of the request's access token (401 without a valid one)."""
    if REQUESTER in request:
        return request[REQUESTER]
    found = await services(request).accounts.authenticate(bearer_token(request))
    request[REQUESTER] = found
    return found


def client_ip(request: web.Request) -> str | None:
    return request.remote
