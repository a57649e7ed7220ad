"""Push rules API."""

from __future__ import annotations

from aiohttp import web

from homeserver.client_api.common import requester, services
from homeserver.common.errors import MatrixError, bad_json, invalid_param
from homeserver.common.http import json_response, read_json
from homeserver.push.rules import check_actions, check_kind

routes = web.RouteTableDef()
P = "/_matrix/client/v3/pushrules"
RULE = P + "/{scope}/{kind}/{rule_id}"


def _scope(request: web.Request) -> None:
    if request.match_info.get("scope", "global") != "global":
        raise invalid_param("Only the 'global' scope is supported")


@routes.get(P + "/")
async def all_rules(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    return json_response(await svc.push_rules.all_rules(who.user_id))


@routes.get(P + "/global/")
async def global_rules(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    return json_response((await svc.push_rules.all_rules(who.user_id))["global"])


@routes.get(P + "/global/{kind}/")
async def rules_of_kind(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    kind = request.match_info["kind"]
    check_kind(kind)
    return json_response((await svc.push_rules.all_rules(who.user_id))["global"][kind])


@routes.get(RULE)
async def get_rule(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    _scope(request)
    m = request.match_info
    return json_response(await svc.push_rules.get_rule(who.user_id, m["kind"], m["rule_id"]))


@routes.put(RULE)
async def put_rule(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    _scope(request)
    body = await read_json(request)
    m = request.match_info
    await svc.push_rules.put_rule(
        who.user_id,
        m["kind"],
        m["rule_id"],
        body,
        request.query.get("before"),
        request.query.get("after"),
    )
    return json_response({})


@routes.delete(RULE)
async def delete_rule(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    _scope(request)
    m = request.match_info
    await svc.push_rules.delete_rule(who.user_id, m["kind"], m["rule_id"])
    return json_response({})


@routes.get(RULE + "/{attribute:enabled|actions}")
async def get_attribute(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    _scope(request)
    m = request.match_info
    rule = await svc.push_rules.get_rule(who.user_id, m["kind"], m["rule_id"])
    return json_response({m["attribute"]: rule[m["attribute"]]})


@routes.put(RULE + "/{attribute:enabled|actions}")
async def put_attribute(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    _scope(request)
    body = await read_json(request)
    m = request.match_info
    attribute = m["attribute"]
    if attribute not in body:
        raise MatrixError(400, "M_MISSING_PARAM", f"Missing '{attribute}'")
    value = body[attribute]
    if attribute == "enabled" and not isinstance(value, bool):
        raise bad_json("'enabled' must be a boolean")
    if attribute == "actions":
        value = check_actions(value)
    await svc.push_rules.set_attribute(who.user_id, m["kind"], m["rule_id"], attribute, value)
    return json_response({})
