"""Discovery: /.well-known/matrix/client, /versions, /capabilities."""

from __future__ import annotations

from aiohttp import web

from federation import room_versions
from homeserver.client_api.common import requester, services
from homeserver.common.http import json_response

routes = web.RouteTableDef()

SPEC_VERSIONS = [
    "v1.1", "v1.2", "v1.3", "v1.4", "v1.5", "v1.6", "v1.7", "v1.8", "v1.9", "v1.10",
    "v1.11", "v1.12",
]  # fmt: skip


@routes.get("/.well-known/matrix/client")
async def well_known(request: web.Request) -> web.Response:
    return json_response({"m.homeserver": {"base_url": services(request).config.base_url}})


@routes.get("/_matrix/client/versions")
async def versions(request: web.Request) -> web.Response:
    return json_response(
        {"versions": SPEC_VERSIONS, "unstable_features": {"org.matrix.simplified_msc3575": True}}
    )


@routes.get("/_matrix/client/v3/capabilities")
async def capabilities(request: web.Request) -> web.Response:
    await requester(request)
    # Matrix 1.16: users may change every profile field but those the server manages.
    profile_fields: dict[str, object] = {"enabled": True}
    managed = services(request).directory.managed_fields
    if managed:
        profile_fields["disallowed"] = sorted(managed)
    return json_response(
        {
            "capabilities": {
                "m.room_versions": {
                    "default": room_versions.DEFAULT_ROOM_VERSION,
                    "available": {v: "stable" for v in room_versions.KNOWN_ROOM_VERSIONS},
                },
                "m.change_password": {"enabled": True},
                "m.set_displayname": {"enabled": True},
                "m.set_avatar_url": {"enabled": True},
                "m.3pid_changes": {"enabled": False},
                "m.profile_fields": profile_fields,
            }
        }
    )
