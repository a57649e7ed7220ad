"""The federation HTTP API: key server, version, and X-Matrix-authenticated endpoints.

I/O module (aiohttp).  Routes parse the request, authenticate the origin with X-Matrix
against the key ring, and call the node's :class:`FederationHandler` (a Protocol the
node implements); the node's error middleware renders any MatrixError.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import web

from federation.canonical import check_json_value
from federation.errors import CanonicalJSONError, MatrixError, SignatureError
from federation.keyring import KeyRing
from federation.signing import SigningKey, build_server_keys
from federation.xmatrix import parse_authorization, verify_request

log = logging.getLogger(__name__)

F1 = "/_matrix/federation/v1"
F2 = "/_matrix/federation/v2"
MAX_BODY = 8 * 1024 * 1024
KEY_VALIDITY_MS = 24 * 3600 * 1000


class FederationHandler(Protocol):
    """What the node does for each federation request.  ``origin`` is authenticated."""

    async def on_transaction(
        self, origin: str, txn_id: str, body: dict[str, Any]
    ) -> dict[str, Any]: ...
    async def on_make_membership(
        self, origin: str, membership: str, room_id: str, user_id: str, versions: list[str]
    ) -> dict[str, Any]: ...
    async def on_send_membership(
        self,
        origin: str,
        membership: str,
        room_id: str,
        event_id: str,
        pdu: Any,
        omit_members: bool,
    ) -> dict[str, Any]: ...
    async def on_invite(
        self, origin: str, room_id: str, event_id: str, body: dict[str, Any]
    ) -> dict[str, Any]: ...
    async def on_get_event(self, origin: str, event_id: str) -> dict[str, Any]: ...
    async def on_state(
        self, origin: str, room_id: str, event_id: str, ids_only: bool
    ) -> dict[str, Any]: ...
    async def on_event_auth(self, origin: str, room_id: str, event_id: str) -> dict[str, Any]: ...
    async def on_backfill(
        self, origin: str, room_id: str, event_ids: list[str], limit: int
    ) -> dict[str, Any]: ...
    async def on_get_missing_events(
        self, origin: str, room_id: str, body: dict[str, Any]
    ) -> dict[str, Any]: ...
    async def on_query(
        self, origin: str, query_type: str, args: dict[str, str]
    ) -> dict[str, Any]: ...
    async def on_user_devices(self, origin: str, user_id: str) -> dict[str, Any]: ...
    async def on_user_keys(
        self, origin: str, action: str, body: dict[str, Any]
    ) -> dict[str, Any]: ...
    async def on_public_rooms(
        self, origin: str, limit: int | None, since: str | None, search: str | None
    ) -> dict[str, Any]: ...
    async def on_hierarchy(
        self, origin: str, room_id: str, suggested_only: bool
    ) -> dict[str, Any]: ...
    async def on_media(self, origin: str, media_id: str) -> web.StreamResponse: ...
    async def on_media_thumbnail(
        self, origin: str, media_id: str, query: dict[str, str]
    ) -> web.StreamResponse: ...


@dataclass
class FederationServer:
    server_name: str
    signing_key: SigningKey
    keyring: KeyRing
    handler: FederationHandler
    clock_ms: Callable[[], int]
    enabled: bool = True
    #: Called with the origin of every authenticated request (e.g. to end a send backoff).
    on_origin: Callable[[str], None] = lambda origin: None

    def key_document(self) -> dict[str, Any]:
        return build_server_keys(
            self.server_name, self.signing_key, self.clock_ms() + KEY_VALIDITY_MS
        )


FEDERATION = web.AppKey("federation", FederationServer)

routes = web.RouteTableDef()


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8"),
        status=status,
        content_type="application/json",
    )


def _server(request: web.Request) -> FederationServer:
    server = request.app[FEDERATION]
    if not server.enabled:
        raise MatrixError(404, "M_UNRECOGNIZED", "Federation is disabled on this server")
    return server


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):  # 1e400: Infinity in disguise
        raise ValueError(f"{text} overflows")
    return value


#: One decoder for every request body (json.loads with options builds one per call).
_REQUEST_JSON = json.JSONDecoder(parse_constant=_no_constant, parse_float=_finite_float)


async def _body(request: web.Request) -> Any:
    # StreamReader.read(n) returns what has arrived so far, not n bytes: read to the end.
    chunks: list[bytes] = []
    size = 0
    while size <= MAX_BODY:
        chunk = await request.content.read(MAX_BODY + 1 - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    if size > MAX_BODY:
        raise MatrixError(413, "M_TOO_LARGE", "Request body too large")
    raw = b"".join(chunks)
    if not raw:
        return None
    try:
        # NaN and Infinity are not JSON: refuse them here (as Synapse does) rather than
        # fail later when the body is re-encoded to check the X-Matrix signature.
        return _REQUEST_JSON.decode(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise MatrixError(400, "M_NOT_JSON", "Content not JSON") from None


async def authenticate(request: web.Request) -> tuple[str, Any]:
    """The authenticated origin of a request and its parsed JSON body."""
    server = _server(request)
    body = await _body(request)
    try:
        auth = parse_authorization(request.headers.get("Authorization"))
    except SignatureError as e:
        raise MatrixError(401, "M_UNAUTHORIZED", str(e)) from None
    public_key = await server.keyring.get_key(auth.origin, auth.key_id, server.clock_ms())
    if public_key is None:
        raise MatrixError(401, "M_UNAUTHORIZED", f"unknown key {auth.key_id} of {auth.origin}")
    try:
        verify_request(
            auth,
            method=request.method,
            uri=request.raw_path,
            content=body,
            my_server_name=server.server_name,
            public_key=public_key,
        )
    except SignatureError as e:
        raise MatrixError(401, "M_UNAUTHORIZED", f"request signature check failed: {e}") from None
    except CanonicalJSONError as e:
        raise MatrixError(400, "M_BAD_JSON", f"content is not canonical JSON: {e}") from None
    server.on_origin(auth.origin)
    return auth.origin, body


Endpoint = Callable[[web.Request, FederationServer, str, Any], Awaitable[web.StreamResponse]]


def endpoint(method: str, path: str) -> Callable[[Endpoint], Endpoint]:
    """Register an authenticated federation endpoint."""

    def register(func: Endpoint) -> Endpoint:
        async def handler(request: web.Request) -> web.StreamResponse:
            origin, body = await authenticate(request)
            return await func(request, request.app[FEDERATION], origin, body)

        routes.route(method, path)(handler)
        return func

    return register


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise MatrixError(400, "M_BAD_JSON", "Body must be a JSON object")
    return body


def _pdu(body: Any) -> dict[str, Any]:
    pdu = _object(body)
    try:
        check_json_value(pdu)
    except CanonicalJSONError as e:
        raise MatrixError(400, "M_BAD_JSON", f"invalid event JSON: {e}") from None
    return pdu


# ---------------------------------------------------------------------- unauthenticated


@routes.get("/_matrix/key/v2/server")
@routes.get("/_matrix/key/v2/server/{key_id}")
async def key_server(request: web.Request) -> web.Response:
    return _json(request.app[FEDERATION].key_document())


@routes.get(F1 + "/version")
async def version(request: web.Request) -> web.Response:
    _server(request)
    return _json({"server": {"name": "Kairan", "version": "0.1.0"}})


@routes.post("/_matrix/key/v2/query")
async def key_query(request: web.Request) -> web.Response:
    server = _server(request)
    body = _object(await _body(request))
    wanted = body.get("server_keys")
    if not isinstance(wanted, dict):
        raise MatrixError(400, "M_BAD_JSON", "server_keys must be an object")
    return _json({"server_keys": await _notary(server, list(wanted))})


@routes.get("/_matrix/key/v2/query/{server_name}")
async def key_query_one(request: web.Request) -> web.Response:
    server = _server(request)
    return _json({"server_keys": await _notary(server, [request.match_info["server_name"]])})


async def _notary(server: FederationServer, names: list[str]) -> list[dict[str, Any]]:
    """Answer a notary query: our own document, and documents we fetched, countersigned."""
    from federation.signing import sign_json

    results: list[dict[str, Any]] = []
    for name in names[:50]:
        if name == server.server_name:
            results.append(server.key_document())
            continue
        doc = await server.keyring.fetch_document(name)
        if doc is not None:
            results.append(sign_json(doc, server.server_name, server.signing_key))
    return results


# ---------------------------------------------------------------------- transactions and events


@endpoint("PUT", F1 + "/send/{txn_id}")
async def send_transaction(
    request: web.Request, server: FederationServer, origin: str, body: Any
) -> web.StreamResponse:
    body = _object(body)
    if body.get("origin") not in (None, origin):
        raise MatrixError(400, "M_BAD_JSON", "transaction origin does not match the request's")
    pdus, edus = body.get("pdus", []), body.get("edus", [])
    if not isinstance(pdus, list) or not isinstance(edus, list):
        raise MatrixError(400, "M_BAD_JSON", "pdus and edus must be lists")
    if len(pdus) > 50 or len(edus) > 100:
        raise MatrixError(400, "M_BAD_JSON", "at most 50 PDUs and 100 EDUs per transaction")
    return _json(await server.handler.on_transaction(origin, request.match_info["txn_id"], body))


@endpoint("GET", F1 + "/event/{event_id}")
async def get_event(
    request: web.Request, server: FederationServer, origin: str, body: Any
) -> web.StreamResponse:
    return _json(await server.handler.on_get_event(origin, request.match_info["event_id"]))


@endpoint("GET", F1 + "/state/{room_id}")
async def get_state(
    request: web.Request, server: FederationServer, origin: str, body: Any
) -> web.StreamResponse:
    return _json(
        await server.handler.on_state(
            origin, request.match_info["room_id"], _event_id_param(request), False
        )
    )


@endpoint("GET", F1 + "/state_ids/{room_id}")
async def get_state_ids(
    request: web.Request, server: FederationServer, origin: str, body: Any
) -> web.StreamResponse:
    return _json(
        await server.handler.on_state(
            origin, request.match_info["room_id"], _event_id_param(request), True
        )
    )


def _event_id_param(request: web.Request) -> str:
    event_id = request.query.get("event_id")
    if not event_id:
        raise MatrixError(400, "M_MISSING_PARAM", "Missing event_id")
    return event_id


@endpoint("GET", F1 + "/event_auth/{room_id}/{event_id}")
async def event_auth(
    request: web.Request, server: FederationServer, origin: str, body: Any
) -> web.StreamResponse:
    return _json(
        await server.handler.on_event_auth(
            origin, request.match_info["room_id"], request.match_info["event_id"]
        )
    )


@endpoint("GET", F1 + "/backfill/{room_id}")
async def backfill(
    request: web.Request, server: FederationServer, origin: str, body: Any
) -> web.StreamResponse:
    event_ids = request.query.getall("v", [])
    try:
        limit = int(request.query.get("limit", "10"))
    except ValueError:
        raise MatrixError(400, "M_INVALID_PARAM", "limit must be an integer") from None
    if not event_ids:
        raise MatrixError(400, "M_MISSING_PARAM", "Missing v")
    return _json(
        await server.handler.on_backfill(
            origin, request.match_info["room_id"], event_ids, max(1, min(limit, 100))
        )
    )


@endpoint("POST", F1 + "/get_missing_events/{room_id}")
async def get_missing_events(
    request: web.Request, server: FederationServer, origin: str, body: Any
) -> web.StreamResponse:
    return _json(
        await server.handler.on_get_missing_events(
            origin, request.match_info["room_id"], _object(body)
        )
    )


# ---------------------------------------------------------------------- membership handshakes


async def _make(
    request: web.Request, server: FederationServer, origin: str, membership: str
) -> web.StreamResponse:
    versions = request.query.getall("ver", [])
    return _json(
        await server.handler.on_make_membership(
            origin,
            membership,
            request.match_info["room_id"],
            request.match_info["user_id"],
            versions,
        )
    )


@endpoint("GET", F1 + "/make_join/{room_id}/{user_id}")
async def make_join(
    request: web.Request, server: FederationServer, origin: str, body: Any
) -> web.StreamResponse:
    return await _make(request, server, origin, "join")


@endpoint("GET", F1 + "/make_leave/{room_id}/{user_id}")
async def make_leave(
    request: web.Request, server: FederationServer, origin: str, body: Any
) -> web.StreamResponse:
    return await _make(request, server, origin, "leave")


@endpoint("GET", F1 + "/make_knock/{room_id}/{user_id}")
async def make_knock(
    request: web.Request, server: FederationServer, origin: str, body: Any
) -> web.StreamResponse:
    return await _make(request, server, origin, "knock")


async def _send(
    request: web.Request, server: FederationServer, origin: str, body: Any, membership: str
) -> dict[str, Any]:
    omit = request.query.get("omit_members", "false") == "true"
    return await server.handler.on_send_membership(
        origin,
        membership,
        request.match_info["room_id"],
        request.match_info["event_id"],
        _pdu(body),
        omit,
    )


@endpoint("PUT", F2 + "/send_join/{room_id}/{event_id}")
async def send_join(
    request: web.Request, server: FederationServer, origin: str, body: Any
) -> web.StreamResponse:
    return _json(await _send(request, server, origin, body, "join"))


@endpoint("PUT", F1 + "/send_join/{room_id}/{event_id}")
async def send_join_v1(
    request: web.Request, server: FederationServer, origin: str, body: Any
) -> web.StreamResponse:
    return _json([200, await _send(request, server, origin, body, "join")])


@endpoint("PUT", F2 + "/send_leave/{room_id}/{event_id}")
async def send_leave(
    request: web.Request, server: FederationServer, origin: str, body: Any
) -> web.StreamResponse:
    return _json(await _send(request, server, origin, body, "leave"))


@endpoint("PUT", F1 + "/send_leave/{room_id}/{event_id}")
async def send_leave_v1(
    request: web.Request, server: FederationServer, origin: str, body: Any
) -> web.StreamResponse:
    return _json([200, await _send(request, server, origin, body, "leave")])


@endpoint("PUT", F1 + "/send_knock/{room_id}/{event_id}")
async def send_knock(
    request: web.Request, server: FederationServer, origin: str, body: Any
) -> web.StreamResponse:
    return _json(await _send(request, server, origin, body, "knock"))


@endpoint("PUT", F2 + "/invite/{room_id}/{event_id}")
async def invite(
    request: web.Request, server: FederationServer, origin: str, body: Any
) -> web.StreamResponse:
    return _json(
        await server.handler.on_invite(
            origin, request.match_info["room_id"], request.match_info["event_id"], _object(body)
        )
    )


# ---------------------------------------------------------------------- queries


@endpoint("GET", F1 + "/query/{query_type}")
async def query(
    request: web.Request, server: FederationServer, origin: str, body: Any
) -> web.StreamResponse:
    return _json(
        await server.handler.on_query(origin, request.match_info["query_type"], dict(request.query))
    )


@endpoint("GET", F1 + "/user/devices/{user_id}")
async def user_devices(
    request: web.Request, server: FederationServer, origin: str, body: Any
) -> web.StreamResponse:
    return _json(await server.handler.on_user_devices(origin, request.match_info["user_id"]))


@endpoint("POST", F1 + "/user/keys/query")
async def user_keys_query(
    request: web.Request, server: FederationServer, origin: str, body: Any
) -> web.StreamResponse:
    return _json(await server.handler.on_user_keys(origin, "query", _object(body)))


@endpoint("POST", F1 + "/user/keys/claim")
async def user_keys_claim(
    request: web.Request, server: FederationServer, origin: str, body: Any
) -> web.StreamResponse:
    return _json(await server.handler.on_user_keys(origin, "claim", _object(body)))


@endpoint("GET", F1 + "/publicRooms")
async def public_rooms_get(
    request: web.Request, server: FederationServer, origin: str, body: Any
) -> web.StreamResponse:
    limit = request.query.get("limit")
    return _json(
        await server.handler.on_public_rooms(
            origin,
            int(limit) if limit and limit.isdigit() else None,
            request.query.get("since"),
            None,
        )
    )


@endpoint("POST", F1 + "/publicRooms")
async def public_rooms_post(
    request: web.Request, server: FederationServer, origin: str, body: Any
) -> web.StreamResponse:
    body = _object(body or {})
    search = (
        body.get("filter", {}).get("generic_search_term")
        if isinstance(body.get("filter"), dict)
        else None
    )
    limit = body.get("limit")
    since = body.get("since")
    return _json(
        await server.handler.on_public_rooms(
            origin,
            limit if isinstance(limit, int) else None,
            since if isinstance(since, str) else None,
            search if isinstance(search, str) else None,
        )
    )


@endpoint("GET", F1 + "/hierarchy/{room_id}")
async def hierarchy(
    request: web.Request, server: FederationServer, origin: str, body: Any
) -> web.StreamResponse:
    suggested = request.query.get("suggested_only", "false") == "true"
    return _json(
        await server.handler.on_hierarchy(origin, request.match_info["room_id"], suggested)
    )


@endpoint("GET", F1 + "/media/download/{media_id}")
async def media_download(
    request: web.Request, server: FederationServer, origin: str, body: Any
) -> web.StreamResponse:
    return await server.handler.on_media(origin, request.match_info["media_id"])


@endpoint("GET", F1 + "/media/thumbnail/{media_id}")
async def media_thumbnail(
    request: web.Request, server: FederationServer, origin: str, body: Any
) -> web.StreamResponse:
    return await server.handler.on_media_thumbnail(
        origin, request.match_info["media_id"], dict(request.query)
    )


@routes.route("*", F1 + "/{tail:.*}")
async def unknown(request: web.Request) -> web.Response:
    raise MatrixError(404, "M_UNRECOGNIZED", "Unrecognized federation request")
