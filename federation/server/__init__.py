"""The federation HTTP API: key server, version, and X-Matrix-authenticated endpoints.

I/O package (aiohttp).  Routes parse the request, authenticate the origin with X-Matrix
against the key ring, and call the node's :class:`FederationHandler` (a Protocol the
node implements); the node's error middleware renders any MatrixError.

:mod:`.http` holds the plumbing and :data:`routes`, the table every route module adds
its routes to when it is imported: :mod:`.keys` (unauthenticated), :mod:`.room_events`,
:mod:`.membership` and :mod:`.queries`.  Their paths do not overlap, so the order they
are imported in does not matter; the catch-all for unknown federation paths is added
here, after them all.
"""

from __future__ import annotations

from aiohttp import web

from federation.errors import MatrixError
from federation.server import keys, membership, queries, room_events
from federation.server.handler import FederationHandler
from federation.server.http import (
    F1,
    F2,
    FEDERATION,
    KEY_VALIDITY_MS,
    MAX_BODY,
    FederationServer,
    authenticate,
    authenticated,
    endpoint,
    routes,
)

__all__ = [
    "F1",
    "F2",
    "FEDERATION",
    "KEY_VALIDITY_MS",
    "MAX_BODY",
    "FederationHandler",
    "FederationServer",
    "authenticate",
    "authenticated",
    "endpoint",
    "keys",
    "membership",
    "queries",
    "room_events",
    "routes",
]


@routes.route("*", F1 + "/{tail:.*}")
async def unknown(request: web.Request) -> web.Response:
    raise MatrixError(404, "M_UNRECOGNIZED", "Unrecognized federation request")
