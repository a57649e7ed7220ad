"""The partners feature's endpoints: whether a user is a partner (any local user may ask),
and the admin API that makes, extends, lists and ends partner accounts."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from homeserver.client_api.common import requester, services
from homeserver.common.errors import bad_json, invalid_param, not_found
from homeserver.common.http import json_response, read_json
from homeserver.extensions import Registry
from homeserver.extensions.points import Requester
from homeserver.municipal.partners import rules
from homeserver.municipal.partners.service import PartnerService

CLIENT = "/_matrix/client/unstable/jp.kairan/partners"
ADMIN = "/_kairan/admin/v1/partners"


def register_routes(registry: Registry, service: PartnerService) -> None:
    async def known_local_user(request: web.Request) -> str:
        user_id = request.match_info["user_id"]
        accounts = services(request).accounts
        if not accounts.is_local(user_id):
            raise invalid_param(f"{user_id} is not a user of this server")
        user = await accounts.get_user(user_id)
        if user is None:
            raise not_found(f"Unknown user {user_id}")
        return user_id

    async def is_partner(request: web.Request) -> web.Response:
        await requester(request)
        partner = await service.get(await known_local_user(request))
        if partner is None:
            return json_response({"partner": False})
        return json_response(
            {
                "partner": True,
                "expires": partner.expires.isoformat(),
                "expired": service.expired(partner),
            }
        )

    async def list_partners(request: web.Request, who: Requester) -> web.Response:
        partners = await service.all()
        return json_response({"partners": [_entry(service, p) for p in partners]})

    async def get_partner(request: web.Request, who: Requester) -> web.Response:
        partner = await service.get(await known_local_user(request))
        if partner is None:
            raise not_found(f"{request.match_info['user_id']} is not a partner account")
        return json_response(_entry(service, partner))

    async def put_partner(request: web.Request, who: Requester) -> web.Response:
        user_id = await known_local_user(request)
        body = await read_json(request)
        if "expires" not in body:
            raise bad_json("expires (YYYY-MM-DD) is required")
        try:
            expires = rules.parse_date(body["expires"])
        except ValueError as e:
            raise invalid_param(str(e)) from None
        partner = await service.set(user_id, expires, who.user_id)
        return json_response(_entry(service, partner))

    async def delete_partner(request: web.Request, who: Requester) -> web.Response:
        user_id = await known_local_user(request)
        if not await service.remove(user_id):
            raise not_found(f"{user_id} is not a partner account")
        return json_response({})

    registry.add_client_route("GET", CLIENT + "/{user_id}", is_partner)
    registry.add_admin_route("GET", ADMIN, list_partners)
    registry.add_admin_route("GET", ADMIN + "/{user_id}", get_partner)
    registry.add_admin_route("PUT", ADMIN + "/{user_id}", put_partner)
    registry.add_admin_route("DELETE", ADMIN + "/{user_id}", delete_partner)


def _entry(service: PartnerService, partner: Any) -> dict[str, Any]:
    return {**partner.as_json(), "expired": service.expired(partner)}
