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
    the requests :data:`SUSPENDED_REFUSED` lists.  The device's last-seen address and user
    agent are recorded (``homeserver/accounts/last_seen.py``: rarely a write)."""
    if REQUESTER in request:
        return request[REQUESTER]
    accounts = services(request).accounts
    found = await accounts.authenticate(bearer_token(request))
    if found.locked and not allow_locked:
        raise MatrixError(401, "M_USER_LOCKED", "This account has been locked", soft_logout=True)
    client = client_info(request)
    await accounts.check_access(found, client)
    if found.suspended and suspended_refused(request, found.user_id):
        raise suspended_error()
    await accounts.last_seen.seen(found, client)
    request[REQUESTER] = found
    return found


def suspended_error(
    message: str = "You cannot perform this action while suspended.",
) -> MatrixError:
    """The spec's answer to a suspended account's refused request (403 M_USER_SUSPENDED)."""
    return MatrixError(403, "M_USER_SUSPENDED", message)


async def refuse_suspended_redaction(request: web.Request, who: Requester, redacts: object) -> None:
    """A suspended account may redact its own events but not others' (Matrix 1.18, as
    Synapse): 403 ``M_USER_SUSPENDED`` when the event ``redacts`` names is known here and
    was sent by someone else (an unknown one fails later, as for anyone)."""
    if not who.suspended or not isinstance(redacts, str):
        return
    target = await services(request).rooms.get_event(redacts)
    if target is not None and target.sender != who.user_id:
        raise suspended_error("You can only redact your own events while suspended.")


_CS = "/_matrix/client/{version}"
#: What a suspended account may not do (the spec's recommended list, as Synapse): join,
#: knock, invite or accept invites, create rooms, send messages and state, moderate others,
#: change its profile.  Leaving, redacting its own events, reading, keys and devices stay
#: allowed: a redaction through ``/send`` and a membership through ``/state`` pass here and
#: are checked by their handlers (only one's own events may be redacted, only one's own
#: membership left).
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


def suspended_refused(request: web.Request, user_id: str) -> bool:
    """Whether a suspended account may not make ``request`` at all (a redaction through
    ``/send`` and its own membership through ``/state`` are left to their handlers)."""
    resource = request.match_info.route.resource
    shape = _spec_shape(resource.canonical if resource is not None else request.path)
    if (request.method, shape) not in SUSPENDED_REFUSED:
        return False
    event_type = request.match_info.get("event_type")
    if shape.endswith("/send/{eventType}/{txnId}"):
        return event_type != "m.room.redaction"
    if shape.endswith("/state/{eventType}/{stateKey}"):
        return not (event_type == "m.room.member" and request.match_info["state_key"] == user_id)
    return True


def client_ip(request: web.Request) -> str | None:
    return request.remote


def client_info(request: web.Request) -> ClientInfo:
    """Where the request comes from: its address, user agent and listener zone."""
    zone = request.app.get(ZONE, "default")
    return ClientInfo(request.remote, request.headers.get("User-Agent"), zone)
