"""The documents a node serves to the other members, and where they push new versions.

``GET  /_matrix/federation/unstable/jp.kairan/consortia``: ``{"consortia": {id: version}}``
``GET  .../consortia/{id}[?version=N]``: the version in force (or version N) of a document
``PUT  .../consortia/{id}``: a newer version; checked, then in force (``{"version": N}``)
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from homeserver.common.errors import MatrixError, not_found
from homeserver.common.http import json_response
from homeserver.extensions import Registry
from homeserver.municipal.consortium import rules, storage
from homeserver.municipal.consortium.gossip import PATH
from homeserver.municipal.consortium.service import ConsortiumService


def register_routes(registry: Registry, service: ConsortiumService) -> None:
    async def listing(request: web.Request, origin: str, body: Any) -> web.Response:
        held = {doc.id: doc.version for doc in service.documents().values()}
        return json_response({"consortia": held})

    async def get_document(request: web.Request, origin: str, body: Any) -> web.Response:
        doc_id = request.match_info["id"]
        raw = request.query.get("version")
        version = None
        if raw is not None:
            if not raw.isdigit() or len(raw) > 15:
                raise MatrixError(400, "M_INVALID_PARAM", "version must be a positive integer")
            version = int(raw)
        if version is None:
            held = service.consortium(doc_id)
            if held is None:
                raise not_found(f"No consortium {doc_id}")
            return json_response(dict(held.json))
        async with service.db.read() as conn:
            text = await storage.get(conn, doc_id, version)
        if text is None:
            raise not_found(f"No version {version} of consortium {doc_id}")
        return json_response(json.loads(text))

    async def put_document(request: web.Request, origin: str, body: Any) -> web.Response:
        doc_id = request.match_info["id"]
        if not isinstance(body, dict) or body.get("id") != doc_id:
            raise MatrixError(400, "M_BAD_JSON", f"body must be a document of consortium {doc_id}")
        held = service.consortium(doc_id)
        if held is None:
            # A node learns only newer versions of consortia it is in: joining one is
            # its operator's decision (kairan consortium apply).
            raise MatrixError(403, "M_FORBIDDEN", f"this node is not in consortium {doc_id}")
        if isinstance(body.get("version"), int) and body["version"] <= held.version:
            return json_response({"version": held.version})
        try:
            doc = await service.apply(body, origin)
        except rules.Refused as e:
            raise MatrixError(400, "M_INVALID_PARAM", f"document refused: {e}") from None
        return json_response({"version": doc.version})

    registry.add_federation_route("GET", PATH, listing)
    registry.add_federation_route("GET", PATH + "/{id}", get_document)
    registry.add_federation_route("PUT", PATH + "/{id}", put_document)
