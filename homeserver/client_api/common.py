"""What every handler needs: the services, and who is asking."""

from __future__ import annotations

from aiohttp import web

from homeserver.accounts.checks import ClientInfo
from homeserver.accounts.service import Requester
from homeserver.client_api.services import SERVICES, Services
from homeserver.common.errors import MatrixError
from homeserver.common.http import ZONE, bearer_token


def services(request: web.Request) -> Services:
    return request.app[SERVICES]


REQUESTER = web.RequestKey("requester", Requester)


async def requester(request: web.Request, *, allow_locked: bool = False) -> Requester:
    """The user and device of the request's access token (401 without a valid one), once
    the features' access checks allow its use.  A locked account gets 401 ``M_USER_LOCKED``
    (but where ``allow_locked``: logging out); a suspended one 403 ``M_USER_SUSPENDED`` on
    the requests :data:`SUSPENDED_REFUSED` lists."""
    if REQUESTER in request:
        return request[REQUESTER]
    accounts = services(request).accounts
    found = await accounts.authenticate(bearer_token(request))
    if found.locked and not allow_locked:
        raise MatrixError(401, "M_USER_LOCKED", "This account has been locked", soft_logout=True)
    await accounts.check_access(found, client_info(request))
    if found.suspended and suspended_refused(request):
        raise MatrixError(
            403, "M_USER_SUSPENDED", "You cannot perform this action while suspended."
        )
    request[REQUESTER] = found
    return found


_CS = "/_matrix/client/{version}"
#: What a suspended account may not do (the spec's recommended list, as Synapse): join,
#: knock, invite or accept invites, create rooms, send messages and state, moderate others,
#: change its profile.  Leaving, redacting, reading, keys and devices stay allowed.
SUSPENDED_REFUSED = {
    ("POST", "/createRoom"),
    ("POST", "/join/{roomIdOrAlias}"),
    ("POST", "/knock/{roomIdOrAlias}"),
    ("POST", "/rooms/{roomId}/join"),
    ("POST", "/rooms/{roomId}/invite"),
    ("POST", "/rooms/{roomId}/kick"),
    ("POST", "/rooms/{roomId}/ban"),
    ("POST", "/rooms/{roomId}/unban"),
    ("POST", "/rooms/{roomId}/upgrade"),
    ("PUT", "/rooms/{roomId}/send/{eventType}/{txnId}"),
    ("PUT", "/rooms/{roomId}/state/{eventType}"),
    ("PUT", "/rooms/{roomId}/state/{eventType}/{stateKey}"),
    ("PUT", "/profile/{userId}/{keyName}"),
    ("DELETE", "/profile/{userId}/{keyName}"),
    ("PUT", "/profile/{userId}/displayname"),
    ("PUT", "/profile/{userId}/avatar_url"),
}


def _spec_shape(path: str) -> str:
    """``/_matrix/client/v3/rooms/{room_id}/send/...`` -> ``/rooms/{roomId}/send/...``:
    the route's path after the version, with the spec's names for its parts."""
    parts = path.split("/")
    if len(parts) < 4 or parts[1:3] != ["_matrix", "client"]:
        return path
    rest = "/" + "/".join(parts[4:])
    for ours, spec in (
        ("{room_id}", "{roomId}"), ("{room_id_or_alias}", "{roomIdOrAlias}"),
        ("{event_type}", "{eventType}"), ("{txn_id}", "{txnId}"), ("{txnid}", "{txnId}"),
        ("{state_key}", "{stateKey}"), ("{user_id}", "{userId}"), ("{key_name}", "{keyName}"),
        ("{field}", "{keyName}"), ("{key}", "{keyName}"),
    ):  # fmt: skip
        rest = rest.replace(ours, spec)
    return rest


def suspended_refused(request: web.Request) -> bool:
    """Whether a suspended account may not make ``request`` (its messages may be redactions:
    redacting its own events is allowed)."""
    resource = request.match_info.route.resource
    shape = _spec_shape(resource.canonical if resource is not None else request.path)
    if (request.method, shape) not in SUSPENDED_REFUSED:
        return False
    return not (
        shape.endswith("/send/{eventType}/{txnId}")
        and request.match_info.get("event_type") == "m.room.redaction"
    )


def client_ip(request: web.Request) -> str | None:
    return request.remote


def client_info(request: web.Request) -> ClientInfo:
    """Where the request comes from: its address, user agent and listener zone."""
    zone = request.app.get(ZONE, "default")
    return ClientInfo(request.remote, request.headers.get("User-Agent"), zone)
