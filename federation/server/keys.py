"""Unauthenticated routes: the server's own keys, notary queries, the version, and OpenID
user info (whose caller is a third party holding a user's token, not a server)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from federation.errors import MatrixError
from federation.server.http import (
    F1,
    FEDERATION,
    FederationServer,
    enabled_server,
    json_response,
    object_body,
    read_body,
    routes,
)
from federation.signing import sign_json


@routes.get("/_matrix/key/v2/server")
@routes.get("/_matrix/key/v2/server/{key_id}")
async def key_server(request: web.Request) -> web.Response:
    return json_response(request.app[FEDERATION].key_document())


@routes.get(F1 + "/version")
async def version(request: web.Request) -> web.Response:
    enabled_server(request)
    return json_response({"server": {"name": "Kairan", "version": "0.1.0"}})


@routes.get(F1 + "/openid/userinfo")
async def openid_userinfo(request: web.Request) -> web.Response:
    server = enabled_server(request)
    token = request.query.get("access_token")
    if not token:
        raise MatrixError(401, "M_MISSING_TOKEN", "Access Token required")
    user_id = await server.handler.on_openid_userinfo(token)
    if user_id is None:
        raise MatrixError(401, "M_UNKNOWN_TOKEN", "Access Token unknown or expired")
    return json_response({"sub": user_id})


@routes.post("/_matrix/key/v2/query")
async def key_query(request: web.Request) -> web.Response:
    server = enabled_server(request)
    body = object_body(await read_body(request))
    wanted = body.get("server_keys")
    if not isinstance(wanted, dict):
        raise MatrixError(400, "M_BAD_JSON", "server_keys must be an object")
    return json_response({"server_keys": await _notary(server, list(wanted))})


@routes.get("/_matrix/key/v2/query/{server_name}")
async def key_query_one(request: web.Request) -> web.Response:
    server = enabled_server(request)
    return json_response(
        {"server_keys": await _notary(server, [request.match_info["server_name"]])}
    )


async def _notary(server: FederationServer, names: list[str]) -> list[dict[str, Any]]:
    """Answer a notary query: our own document, and documents we fetched, countersigned."""
    results: list[dict[str, Any]] = []
    for name in names[:50]:
        if name == server.server_name:
            results.append(server.key_document())
            continue
        doc = await server.keyring.fetch_document(name)
        if doc is not None:
            results.append(sign_json(doc, server.server_name, server.signing_key))
    return results
