"""The directory's endpoints: client search, the federation search peers ask, and the
admin API (import, organisations, staff entries).  Thin: parse, call the service, render."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from homeserver.client_api.common import requester
from homeserver.common.errors import MatrixError, bad_json, too_large
from homeserver.common.http import json_response, read_body, read_json
from homeserver.extensions import Registry
from homeserver.extensions.points import Requester
from homeserver.municipal.directory import csvfile
from homeserver.municipal.directory.federated import FederatedSearch
from homeserver.municipal.directory.service import DEFAULT_LIMIT, DirectoryService

CLIENT = "/_matrix/client/unstable/jp.kairan/directory"
FEDERATION = "/_matrix/federation/unstable/jp.kairan/directory"
ADMIN = "/_kairan/admin/v1/directory"


def search_request(body: Any) -> tuple[str, int]:
    """``search_term`` and ``limit`` of a search request body (client or peer)."""
    if not isinstance(body, dict):
        raise bad_json("Request body must be a JSON object")
    term = body.get("search_term")
    if not isinstance(term, str):
        raise MatrixError(400, "M_MISSING_PARAM", "search_term must be a string")
    limit = body.get("limit", DEFAULT_LIMIT)
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise bad_json("limit must be a positive integer")
    return term, limit


def register_routes(
    registry: Registry, service: DirectoryService, federated: FederatedSearch
) -> None:
    async def client_search(request: web.Request) -> web.Response:
        await requester(request)
        body = await read_json(request)
        term, limit = search_request(body)
        scope = body.get("federated", True)
        if not isinstance(scope, bool):
            raise bad_json("federated must be a boolean")
        if not scope:  # this node's staff only
            results, limited = await service.search_local(term, limit)
            return json_response({"results": results, "limited": limited})
        return json_response(await federated.search(term, limit))

    async def federation_search(request: web.Request, origin: str, body: Any) -> web.Response:
        # Local staff only: a peer's question is never passed on.
        term, limit = search_request(body)
        results, limited = await service.search_local(term, limit)
        return json_response({"results": results, "limited": limited})

    async def import_csv(request: web.Request, who: Requester) -> web.Response:
        dry_run = request.query.get("dry_run", "false").lower() in ("1", "true", "yes")
        if request.content_length is not None and request.content_length > csvfile.MAX_FILE_BYTES:
            raise too_large(f"The file is larger than {csvfile.MAX_FILE_BYTES} bytes")
        data = await read_body(request, csvfile.MAX_FILE_BYTES)
        if len(data) > csvfile.MAX_FILE_BYTES:
            raise too_large(f"The file is larger than {csvfile.MAX_FILE_BYTES} bytes")
        report = await service.import_csv(data, dry_run=dry_run)
        return json_response(report.as_json(), status=400 if report.errors else 200)

    async def organisations(request: web.Request, who: Requester) -> web.Response:
        return json_response({"organisations": await service.organisations()})

    async def get_staff(request: web.Request, who: Requester) -> web.Response:
        return json_response(await service.get_staff(_staff_id(request)))

    async def put_staff(request: web.Request, who: Requester) -> web.Response:
        body = await read_json(request)
        return json_response(await service.put_staff(_staff_id(request), body))

    registry.add_client_route("POST", CLIENT + "/search", client_search)
    registry.add_federation_route("POST", FEDERATION + "/search", federation_search)
    registry.add_admin_route("POST", ADMIN + "/import", import_csv)
    registry.add_admin_route("GET", ADMIN + "/organisations", organisations)
    registry.add_admin_route("GET", ADMIN + "/staff/{staff_id}", get_staff)
    registry.add_admin_route("PUT", ADMIN + "/staff/{staff_id}", put_staff)


def _staff_id(request: web.Request) -> int:
    raw = request.match_info["staff_id"]
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 12:
        raise MatrixError(404, "M_NOT_FOUND", "No such staff entry")
    return int(raw)
