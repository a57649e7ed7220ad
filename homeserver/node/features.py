"""The node's side of its features: loading them, their migrations, listeners and routes."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web

from federation.server import authenticated
from homeserver.client_api.common import requester
from homeserver.common.clock import Clock
from homeserver.common.errors import MatrixError
from homeserver.common.http import Handler
from homeserver.config import Config, ConfigError
from homeserver.extensions import Extensions, FeatureError, load_features
from homeserver.extensions.registry import AdminHandler, Route
from homeserver.rooms.cache import RoomCache
from homeserver.storage.database import Database, StorageError
from homeserver.storage.events import StoredEvent
from homeserver.storage.features import upgrade_feature

log = logging.getLogger(__name__)

#: The path prefixes of each resource a listener may serve (``listeners[].resources``).
RESOURCE_PREFIXES = {
    "client": (
        "/_matrix/client",
        "/_matrix/media",
        "/.well-known/matrix/client",
        "/.well-known/matrix/support",
        "/.well-known/matrix/server",
    ),
    "federation": ("/_matrix/federation", "/_matrix/key", "/.well-known/matrix/server"),
    "admin": ("/_kairan/admin",),
}


async def load_extensions(config: Config, db: Database, clock: Clock) -> Extensions:
    """Let the features the configuration enables register, then bring their own tables
    up to date (after the core's migrations, which opening the database ran)."""
    try:
        extensions = load_features(
            config.features,
            server_name=config.server_name,
            directory=config.directory,
            db=db,
            clock=clock,
            federation_closed=config.federation.closed,
        )
    except FeatureError as e:
        raise ConfigError(str(e)) from e
    if config.federation.closed and not extensions.peer_policy:
        # Never "closed" meaning "open to all" (Synapse's empty whitelist once did).
        raise ConfigError(
            "federation.closed is true but no enabled feature decides which servers are "
            "members (enable the consortium feature)"
        )
    for migrations in extensions.migrations:
        try:
            await upgrade_feature(db, migrations.feature, migrations.script_location)
        except StorageError as e:
            raise ConfigError(str(e)) from e
    return extensions


def event_listeners(extensions: Extensions) -> list[Callable[[RoomCache, StoredEvent], None]]:
    """The features' event listeners in the form the room service calls them."""

    def adapt(listener: Any) -> Callable[[RoomCache, StoredEvent], None]:
        def on_event(room: RoomCache, event: StoredEvent) -> None:
            listener.on_event(room.room_id, event.event_id, event.pdu)

        return on_event

    return [adapt(listener) for listener in extensions.event_listeners]


def add_feature_routes(app: web.Application, extensions: Extensions) -> None:
    """The features' client, federation and admin endpoints."""
    for route in extensions.client_routes:
        app.router.add_route(route.method, route.path, route.handler)
    for route in extensions.federation_routes:
        app.router.add_route(route.method, route.path, authenticated(route.handler))
    for route in extensions.admin_routes:
        app.router.add_route(route.method, route.path, _admin_only(route))


def _admin_only(route: Route) -> Handler:
    handler: AdminHandler = route.handler

    async def admin(request: web.Request) -> web.StreamResponse:
        who = await requester(request)
        if not who.is_admin:
            raise MatrixError(403, "M_FORBIDDEN", "You are not a server admin")
        return await handler(request, who)

    return admin


def resource_filter(resources: tuple[str, ...]) -> Any:
    """Middleware answering 404 ``M_UNRECOGNIZED`` for paths of resources the listener
    does not serve (the federation API on a client-only internet listener...)."""
    served = {p for name in resources for p in RESOURCE_PREFIXES.get(name, ())}
    refused = tuple(
        p
        for name, ps in RESOURCE_PREFIXES.items()
        if name not in resources
        for p in ps
        if p not in served  # /.well-known/matrix/server: client and federation listeners
    )

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if refused and request.path.startswith(refused):
            raise MatrixError(404, "M_UNRECOGNIZED", "Unrecognized request")
        return await handler(request)

    return middleware
