"""Discovery: /.well-known/matrix/client, /versions, /capabilities."""

from __future__ import annotations

from aiohttp import web

from federation import room_versions
from homeserver.client_api.common import requester, services
from homeserver.common.errors import not_found
from homeserver.common.http import json_response

routes = web.RouteTableDef()

#: The spec versions /versions claims: exactly those all of whose Client-Server operations
#: (and those of the versions before; the optional ones aside) the node routes, which
#: tests/homeserver/test_endpoint_coverage.py checks against the router and the table
#: spec/client-server-versions.json (``kairan endpoints --spec ... --missing`` lists what
#: a version lacks).
SPEC_VERSIONS: list[str] = [f"v1.{minor}" for minor in range(1, 20)]


@routes.get("/.well-known/matrix/client")
async def well_known(request: web.Request) -> web.Response:
    return json_response({"m.homeserver": {"base_url": services(request).config.base_url}})


@routes.get("/.well-known/matrix/support")
async def support(request: web.Request) -> web.Response:
    """Server contacts and support page (``well_known.support``); 404 when none is set, as
    the spec says."""
    configured = services(request).config.well_known
    if not configured.contacts and configured.support_page is None:
        raise not_found("No support information is configured")
    body: dict[str, object] = {}
    if configured.contacts:
        body["contacts"] = [
            {
                k: v
                for k, v in (
                    ("role", c.role),
                    ("matrix_id", c.matrix_id),
                    ("email_address", c.email_address),
                )
                if v is not None
            }
            for c in configured.contacts
        ]
    if configured.support_page is not None:
        body["support_page"] = configured.support_page
    return json_response(body)


@routes.get("/.well-known/matrix/server")
async def server_delegation(request: web.Request) -> web.Response:
    """Federation delegation (``well_known.server``), served on the client listener too."""
    server = services(request).config.well_known.server
    if server is None:
        raise not_found("No delegation is configured")
    return json_response({"m.server": server})


@routes.get("/_matrix/client/versions")
async def versions(request: web.Request) -> web.Response:
    return json_response(
        {"versions": SPEC_VERSIONS, "unstable_features": {"org.matrix.simplified_msc3575": True}}
    )


@routes.get("/_matrix/client/v3/capabilities")
async def capabilities(request: web.Request) -> web.Response:
    who = await requester(request)
    svc = services(request)
    # Matrix 1.16: users may change every profile field but those the server manages.
    profile_fields: dict[str, object] = {"enabled": True}
    managed = svc.directory.managed_fields
    if managed:
        profile_fields["disallowed"] = sorted(managed)
    extra: dict[str, object] = {}
    if who.is_admin:  # Matrix 1.18: omitted for those who may neither lock nor suspend
        extra["m.account_moderation"] = {"lock": True, "suspend": True}
    return json_response(
        {
            "capabilities": {
                **extra,
                "m.room_versions": {
                    "default": room_versions.DEFAULT_ROOM_VERSION,
                    "available": {v: "stable" for v in room_versions.KNOWN_ROOM_VERSIONS},
                },
                "m.change_password": {"enabled": True},
                "m.set_displayname": {"enabled": True},
                "m.set_avatar_url": {"enabled": True},
                "m.3pid_changes": {"enabled": False},
                "m.profile_fields": profile_fields,
                "m.get_login_token": {"enabled": svc.config.sessions.login_token_enabled},
            }
        }
    )
