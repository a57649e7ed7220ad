"""The node's HTTP side: the routes and middlewares of the app, and running the node.

The services are built by the composition root, :mod:`homeserver.node.wiring`.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import sys

from aiohttp import web
from aiohttp.typedefs import Middleware

from federation import server as federation_server
from federation.server import FEDERATION
from homeserver.admin.metrics import METRICS, start_listener
from homeserver.client_api import (
    account,
    admin,
    admin_reports,
    devices,
    directory,
    discovery,
    initial_sync,
    keys,
    media,
    moderation,
    mutual_rooms,
    not_offered,
    openid,
    presence,
    preview,
    profile,
    push,
    pushers,
    relations,
    roomops,
    rooms,
    search,
    sessions,
    sliding_sync,
    spaces,
    sync,
    tags,
    threepids,
    to_device,
    voip,
)
from homeserver.client_api.common import requester
from homeserver.client_api.services import SERVICES
from homeserver.common.errors import MatrixError
from homeserver.common.http import ZONE, Handler, error_middleware
from homeserver.common.protocol_log import HANDLER_ARGS
from homeserver.config import RESOURCES, Config
from homeserver.config.listeners import Listener
from homeserver.node.access_log import access_log_middleware
from homeserver.node.api import NodeApi
from homeserver.node.diagnostics import dump_tasks
from homeserver.node.features import add_feature_routes, resource_filter
from homeserver.node.listeners import listener_ssl, open_listener, ssl_context
from homeserver.node.services import NodeServices
from homeserver.node.wiring import build_services

__all__ = [
    "build_services",
    "close_services",
    "make_app",
    "serve",
    "ssl_context",
    "start_features",
]

log = logging.getLogger(__name__)

ROUTE_MODULES = [discovery, account, rooms, directory, sync, profile, admin, media]
ROUTE_MODULES += [devices, keys, to_device, push, pushers, spaces, tags, relations]
ROUTE_MODULES += [roomops, admin_reports, sessions, moderation, threepids, not_offered]
ROUTE_MODULES += [initial_sync, mutual_rooms, sliding_sync]
ROUTE_MODULES += [presence, openid, voip, preview, search]
MAX_REQUEST_BYTES = 100 * 1024 * 1024
SHUTDOWN_GRACE_SECONDS = 2.0


def _rate_limit_middleware(services: NodeServices) -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method in ("POST", "PUT", "DELETE") and request.path.startswith(
            "/_matrix/client"
        ):
            # Per user when the token is valid (all devices share a bucket), else per IP.
            key = f"ip:{request.remote}"
            if "Authorization" in request.headers:
                with contextlib.suppress(MatrixError):  # the handler answers a bad token
                    key = "user:" + (await requester(request)).user_id
            services.rate_limiter.check(key)
        return await handler(request)

    return middleware


def make_app(
    services: NodeServices, listener: Listener | None = None, *, access_log: bool = False
) -> web.Application:
    """The application one listener serves: the routes of its resources, and the
    middleware of its zone (the features')."""
    listener = listener or services.config.listener
    middlewares = [error_middleware, _rate_limit_middleware(services)]
    if listener.resources != RESOURCES:
        middlewares.append(resource_filter(listener.resources))
    middlewares += services.extensions.middleware_for(listener.zone)
    if access_log:  # one line per request (development nodes): homeserver/node/access_log.py
        middlewares.insert(0, access_log_middleware)
    metrics = services.metrics
    if metrics is not None:
        middlewares.insert(0, metrics.middleware())
    app = web.Application(
        middlewares=middlewares, client_max_size=MAX_REQUEST_BYTES, handler_args=HANDLER_ARGS
    )
    app[SERVICES] = services
    app[ZONE] = listener.zone
    if metrics is not None:
        app[METRICS] = metrics
    for module in ROUTE_MODULES:
        app.router.add_routes(module.routes)
    app[FEDERATION] = services.federation.server
    app.router.add_routes(federation_server.routes)
    add_feature_routes(app, services.extensions)
    return app


async def start_features(services: NodeServices) -> None:
    """The features' start-up, once the node is built and before it listens."""
    if not services.extensions.on_start:
        return
    api = NodeApi(
        services.config.server_name,
        services.rooms,
        services.accounts,
        services.federation.client,
        sender=services.federation.sender,
        provided=services.extensions.provided,
        profiles=services.directory,
        handler=services.handler,
    )
    for start in services.extensions.on_start:
        await start(api)


async def close_services(services: NodeServices) -> None:
    for stop in services.extensions.on_stop:
        try:
            await stop()
        except Exception:  # one feature's failure must not keep the node from stopping
            log.exception("a feature failed to stop")
    await services.housekeeping.close()
    await services.pushers.pool.close()
    await services.federation.close()
    await services.media.close()
    services.typing.close()
    services.presence.close()
    await services.url_preview.close()
    await services.sliding_sync.connections.flush()
    await services.db.close()


async def serve(
    config: Config, *, stop: asyncio.Event | None = None, access_log: bool = False
) -> None:
    """Run the node on every listener until SIGTERM/SIGINT (or ``stop``), then shut down."""
    # The database drivers run in threads: hand the GIL over sooner than the default 5 ms,
    # or every query waits for the event loop's time slice to end.
    sys.setswitchinterval(0.001)
    for listener in config.every_listener:
        listener_ssl(listener)  # a bad certificate ends start-up before anything else
    services = await build_services(config)
    # Everything else runs before the listeners open: once the node answers, its metrics
    # listener, federation sender, pushers and features are up too.
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(close_services, services)
        if services.metrics is not None:
            metrics_runner = await start_listener(
                services.metrics, config.metrics.host, config.metrics.port
            )
            stack.push_async_callback(metrics_runner.cleanup)
        await services.federation.start()
        await services.pushers.pool.start()
        services.housekeeping.start()
        await start_features(services)
        for listener in config.every_listener:
            app = make_app(services, listener, access_log=access_log)
            runner = await open_listener(app, listener, SHUTDOWN_GRACE_SECONDS)
            stack.push_async_callback(runner.cleanup)
        # What start-up made lives as long as the node: frozen out of the collector's sight,
        # full collections walk only what requests make (Synapse freezes its start-up too).
        gc.collect()
        gc.freeze()
        stop = stop or asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        loop.add_signal_handler(signal.SIGUSR1, dump_tasks)
        for listener in config.every_listener:
            log.info(
                "Kairan %s listening on %s://%s:%d (zone %s: %s)",
                config.server_name, "https" if listener.tls_certificate else "http",
                listener.host, listener.port, listener.zone, ", ".join(listener.resources),
            )  # fmt: skip
        try:
            await stop.wait()
        finally:
            log.info("shutting down")
