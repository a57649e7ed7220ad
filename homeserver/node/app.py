"""The node's HTTP side: the routes and middlewares of the app, and running the node.

The services are built by the composition root, :mod:`homeserver.node.wiring`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import ssl
import sys

from aiohttp import web
from aiohttp.typedefs import Middleware

from federation import server as federation_server
from federation.server import FEDERATION
from homeserver.admin.metrics import METRICS, start_listener
from homeserver.client_api import (
    account,
    admin,
    devices,
    discovery,
    keys,
    media,
    profile,
    push,
    pushers,
    rooms,
    spaces,
    sync,
    to_device,
)
from homeserver.client_api.common import requester
from homeserver.client_api.services import SERVICES
from homeserver.common.errors import MatrixError
from homeserver.common.http import Handler, error_middleware
from homeserver.config import Config, ConfigError
from homeserver.node.access_log import access_log_middleware
from homeserver.node.services import NodeServices
from homeserver.node.wiring import build_services

__all__ = ["build_services", "close_services", "make_app", "serve", "ssl_context"]

log = logging.getLogger(__name__)

ROUTE_MODULES = [discovery, account, rooms, sync, profile, admin, media]
ROUTE_MODULES += [devices, keys, to_device, push, pushers, spaces]
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


def make_app(services: NodeServices, *, access_log: bool = False) -> web.Application:
    middlewares = [error_middleware, _rate_limit_middleware(services)]
    if access_log:  # one line per request (development nodes): homeserver/node/access_log.py
        middlewares.insert(0, access_log_middleware)
    metrics = services.metrics
    if metrics is not None:
        middlewares.insert(0, metrics.middleware())
    app = web.Application(middlewares=middlewares, client_max_size=MAX_REQUEST_BYTES)
    app[SERVICES] = services
    if metrics is not None:
        app[METRICS] = metrics
    for module in ROUTE_MODULES:
        app.router.add_routes(module.routes)
    app[FEDERATION] = services.federation.server
    app.router.add_routes(federation_server.routes)
    return app


async def close_services(services: NodeServices) -> None:
    await services.housekeeping.close()
    await services.pushers.pool.close()
    await services.federation.close()
    services.typing.close()
    await services.db.close()


def ssl_context(config: Config) -> ssl.SSLContext | None:
    listener = config.listener
    if listener.tls_certificate is None or listener.tls_private_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(listener.tls_certificate, listener.tls_private_key)
    except (OSError, ssl.SSLError) as e:
        raise ConfigError(f"cannot load TLS certificate/key: {e}") from e
    return context


async def serve(
    config: Config, *, stop: asyncio.Event | None = None, access_log: bool = False
) -> None:
    """Run the node until SIGTERM/SIGINT (or ``stop``), then shut down cleanly."""
    # The database drivers run in threads: hand the GIL over sooner than the default 5 ms,
    # or every query waits for the event loop's time slice to end.
    sys.setswitchinterval(0.001)
    tls = ssl_context(config)
    services = await build_services(config)
    app = make_app(services, access_log=access_log)
    # On SIGTERM, requests in flight get this long; then they (long-polls above all) are
    # cancelled, so the node stops within seconds rather than after the longest /sync.
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_GRACE_SECONDS)
    await runner.setup()
    # Everything else runs before the listener opens: once the node answers, its metrics
    # listener, federation sender and pushers are up too.
    metrics_runner = None
    if METRICS in app:
        try:
            metrics_runner = await start_listener(
                app[METRICS], config.metrics.host, config.metrics.port
            )
        except ConfigError:
            await runner.cleanup()
            await close_services(services)
            raise
    await services.federation.start()
    await services.pushers.pool.start()
    services.housekeeping.start()
    site = web.TCPSite(runner, config.listener.host, config.listener.port, ssl_context=tls)
    try:
        await site.start()
    except OSError as e:
        if metrics_runner is not None:
            await metrics_runner.cleanup()
        await runner.cleanup()
        await close_services(services)
        raise ConfigError(
            f"cannot listen on {config.listener.host}:{config.listener.port}: {e.strerror}"
        ) from e
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    scheme = "https" if tls else "http"
    log.info(
        "Kairan %s listening on %s://%s:%d",
        config.server_name, scheme, config.listener.host, config.listener.port,
    )  # fmt: skip
    try:
        await stop.wait()
    finally:
        log.info("shutting down")
        if metrics_runner is not None:
            await metrics_runner.cleanup()
        await runner.cleanup()
        await close_services(services)
