"""The federation transport's plumbing: the server object the routes find on the app, JSON
bodies in and out, and X-Matrix authentication of the origin (:func:`endpoint`)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from federation.canonical import check_json_value
from federation.errors import CanonicalJSONError, MatrixError, SignatureError
from federation.keyring import KeyRing
from federation.ports import PeerPolicy
from federation.server.handler import FederationHandler
from federation.signing import SigningKey, build_server_keys
from federation.xmatrix import parse_authorization, verify_request

F1 = "/_matrix/federation/v1"
F2 = "/_matrix/federation/v2"
MAX_BODY = 8 * 1024 * 1024
KEY_VALIDITY_MS = 24 * 3600 * 1000


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
    #: Which origins may talk to us (the node's features): asked with the origin a request
    #: names, before its key is fetched and its X-Matrix signature checked.
    peer_policy: PeerPolicy | None = None

    def key_document(self) -> dict[str, Any]:
        return build_server_keys(
            self.server_name, self.signing_key, self.clock_ms() + KEY_VALIDITY_MS
        )


FEDERATION = web.AppKey("federation", FederationServer)

routes = web.RouteTableDef()


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8"),
        status=status,
        content_type="application/json",
    )


def enabled_server(request: web.Request) -> FederationServer:
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


async def read_body(request: web.Request) -> Any:
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
    server = enabled_server(request)
    body = await read_body(request)
    try:
        auth = parse_authorization(request.headers.get("Authorization"))
    except SignatureError as e:
        raise MatrixError(401, "M_UNAUTHORIZED", str(e)) from None
    if server.peer_policy is not None:
        # Before the origin's key is fetched: a refused server costs no request, and an
        # allowed one is verified before anything else happens.
        reason = server.peer_policy.inbound(auth.origin)
        if reason is not None:
            raise MatrixError(403, "M_FORBIDDEN", f"{auth.origin} may not federate here: {reason}")
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


def authenticated(
    func: Callable[[web.Request, str, Any], Awaitable[web.StreamResponse]],
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """An aiohttp handler that runs ``func(request, origin, body)`` once the request's
    X-Matrix signature is verified and the peer policy allows its origin (for federation
    endpoints that node features add)."""

    async def handler(request: web.Request) -> web.StreamResponse:
        origin, body = await authenticate(request)
        return await func(request, origin, body)

    return handler


def endpoint(method: str, path: str) -> Callable[[Endpoint], Endpoint]:
    """Register an authenticated federation endpoint."""

    def register(func: Endpoint) -> Endpoint:
        async def handler(request: web.Request) -> web.StreamResponse:
            origin, body = await authenticate(request)
            return await func(request, request.app[FEDERATION], origin, body)

        routes.route(method, path)(handler)
        return func

    return register


def object_body(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise MatrixError(400, "M_BAD_JSON", "Body must be a JSON object")
    return body


def pdu_body(body: Any) -> dict[str, Any]:
    pdu = object_body(body)
    try:
        check_json_value(pdu)
    except CanonicalJSONError as e:
        raise MatrixError(400, "M_BAD_JSON", f"invalid event JSON: {e}") from None
    return pdu
