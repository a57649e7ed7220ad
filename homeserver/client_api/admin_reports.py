"""The admin API's reports (``/_kairan/admin/v1/{event,room,user}_reports``), in the shape of
Synapse's ``/_synapse/admin/v1/event_reports`` (and ``user_reports``): a page of reports,
newest first unless ``dir=f``, filtered by ``user_id`` and ``room_id`` (or
``target_user_id``), with ``total`` and ``next_token``; one report (with the event's JSON);
deleting one. Admins only (401 without a token, 403 for everyone else)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from homeserver.client_api.common import requester, services
from homeserver.client_api.services import Services
from homeserver.common.errors import invalid_param
from homeserver.common.http import json_response, query_int

routes = web.RouteTableDef()
PREFIX = "/_kairan/admin/v1"
KINDS = "{kind:(event|room|user)}"
MAX_PAGE = 1000


async def _admin(request: web.Request) -> Services:
    svc = services(request)
    svc.accounts.require_admin(await requester(request))
    return svc


def _report_id(request: web.Request) -> int:
    raw = request.match_info["report_id"]
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        raise invalid_param("The report ID must be a positive integer")
    return int(raw)


@routes.get(PREFIX + "/" + KINDS + "_reports")
async def list_reports(request: web.Request) -> web.Response:
    svc = await _admin(request)
    kind = request.match_info["kind"]
    start = query_int(request, "from", 0)
    limit = query_int(request, "limit", 100, minimum=1, maximum=MAX_PAGE)
    direction = request.query.get("dir", "b")
    if direction not in ("b", "f"):
        raise invalid_param("dir must be 'b' or 'f'")
    items, total = await svc.reports.list(
        kind, start, limit, newest_first=direction == "b",
        user_id=request.query.get("user_id"), room_id=request.query.get("room_id"),
        target_user_id=request.query.get("target_user_id"),
    )  # fmt: skip
    body: dict[str, Any] = {f"{kind}_reports": items, "total": total}
    if start + len(items) < total:
        body["next_token"] = start + len(items)
    return json_response(body)


@routes.get(PREFIX + "/" + KINDS + "_reports/{report_id}")
async def get_report(request: web.Request) -> web.Response:
    svc = await _admin(request)
    return json_response(await svc.reports.get(request.match_info["kind"], _report_id(request)))


@routes.delete(PREFIX + "/" + KINDS + "_reports/{report_id}")
async def delete_report(request: web.Request) -> web.Response:
    svc = await _admin(request)
    await svc.reports.delete(request.match_info["kind"], _report_id(request))
    return json_response({})
