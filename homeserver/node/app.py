"""The composition root: builds storage and services, wires the HTTP routes, runs the node."""

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
from federation.errors import KeyFormatError
from federation.server import FEDERATION
from federation.signing import SigningKey, load_signing_keys
from homeserver.accounts.passwords import Passwords
from homeserver.accounts.service import AccountService
from homeserver.accounts.uia import UIA
from homeserver.admin.metrics import METRICS, NodeMetrics, start_listener
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
from homeserver.common.clock import Clock
from homeserver.common.errors import MatrixError
from homeserver.common.http import Handler, RateLimiter, error_middleware
from homeserver.common.notifier import Notifier
from homeserver.config import Config, ConfigError
from homeserver.e2ee.service import KeysService
from homeserver.federation.outbound import Outbound
from homeserver.federation.wiring import build_federation, build_transport, connect_e2ee_and_media
from homeserver.media import MediaService
from homeserver.node.access_log import access_log_middleware
from homeserver.node.housekeeping import Housekeeping
from homeserver.node.services import SERVICES, Services
from homeserver.push.rules import PushRulesService
from homeserver.push.wiring import build_push
from homeserver.rooms.directory import DirectoryService
from homeserver.rooms.handler import RoomHandler
from homeserver.rooms.history import HistoryService
from homeserver.rooms.ignored import IgnoredUsers
from homeserver.rooms.outliers import OutlierMemberships
from homeserver.rooms.reader import RoomReader
from homeserver.rooms.service import RoomService
from homeserver.storage.database import Database, open_database
from homeserver.storage.state import StateStore
from homeserver.sync.service import SyncService
from homeserver.sync.typing import TypingService
from homeserver.userdata.service import UserDataService

log = logging.getLogger(__name__)

ROUTE_MODULES = [discovery, account, rooms, sync, profile, admin, media]
ROUTE_MODULES += [devices, keys, to_device, push, pushers, spaces]
MAX_REQUEST_BYTES = 100 * 1024 * 1024
SHUTDOWN_GRACE_SECONDS = 2.0


def load_key(config: Config) -> SigningKey:
    try:
        text = config.signing_key_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"signing key {config.signing_key_path} is missing (run 'kairan init' or restore it)"
        ) from None
    except OSError as e:
        raise ConfigError(f"cannot read signing key {config.signing_key_path}: {e.strerror}") from e
    try:
        return load_signing_keys(text)[0]
    except KeyFormatError as e:
        raise ConfigError(f"signing key {config.signing_key_path}: {e}") from e


async def build_services(
    config: Config,
    *,
    clock: Clock | None = None,
    database: Database | None = None,
    fast_passwords: bool = False,
) -> Services:
    clock = clock or Clock()
    key = load_key(config)
    db = database or await open_database(config.database)
    state_store = StateStore()
    async with db.read() as conn:
        await state_store.load(conn)
    notifier = Notifier()
    accounts = AccountService(
        db,
        config.server_name,
        clock,
        Passwords(fast=fast_passwords),
        config.admins,
        config.password_policy,
    )
    reader = RoomReader(db, state_store)
    outliers = OutlierMemberships(db, reader, notifier)
    ignored = IgnoredUsers(db)
    push_actions, pushers = build_push(config, db, clock, reader, ignored)
    transport = build_transport(config, key, clock, db)
    outbound = Outbound(reader, transport.sender, config.server_name)
    room_service = RoomService(
        reader,
        notifier,
        clock,
        config.server_name,
        key,
        hooks=[push_actions],
        listeners=[push_actions.after_commit, outbound.on_event],
        outbox=outbound.stage,
    )

    def typing_changed(room_id: str) -> None:
        cached = reader.cached(room_id)
        if cached is not None:
            notifier.notify(cached.interested())

    typing = TypingService(on_change=typing_changed, on_local_typing=outbound.on_typing)
    keys_service = KeysService(db, accounts, notifier, clock, config.server_name)
    push_rules = PushRulesService(db, notifier, on_change=[push_actions.rules_changed])
    userdata = UserDataService(
        db,
        room_service,
        notifier,
        clock,
        ignored=ignored,
        on_read=push_actions.mark_read,
        on_receipt=outbound.on_receipt,
    )
    directory = DirectoryService(room_service, accounts)
    federation = build_federation(
        config, key, clock, transport, outbound, outliers, room_service, typing, userdata,
        directory, accounts,
    )  # fmt: skip
    history = HistoryService(reader, clock, ignored, backfiller=federation.remote.backfill)
    sync_service = SyncService(
        reader,
        history,
        typing,
        notifier,
        clock,
        extensions=[keys_service.sync_extension, push_rules.sync_extension],
    )
    media_service = MediaService(db, config, clock)
    connect_e2ee_and_media(
        federation, room_service, keys_service, media_service, clock, config.remote_media_cache
    )
    handler = RoomHandler(room_service, accounts, outliers, federation.remote)
    return Services(
        config=config,
        db=db,
        clock=clock,
        signing_key=key,
        notifier=notifier,
        state_store=state_store,
        accounts=accounts,
        uia=UIA(),
        rooms=room_service,
        handler=handler,
        history=history,
        typing=typing,
        userdata=userdata,
        sync=sync_service,
        directory=directory,
        federation=federation,
        rate_limiter=RateLimiter(config.rate_limit.per_second, config.rate_limit.burst),
        media=media_service,
        keys=keys_service,
        push_rules=push_rules,
        push_actions=push_actions,
        pushers=pushers,
        housekeeping=Housekeeping(db, clock),
    )


def _rate_limit_middleware(services: Services) -> Middleware:
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


def make_app(services: Services, *, access_log: bool = False) -> web.Application:
    middlewares = [error_middleware, _rate_limit_middleware(services)]
    if access_log:  # one line per request (development nodes): homeserver/node/access_log.py
        middlewares.insert(0, access_log_middleware)
    metrics = NodeMetrics(services) if services.config.metrics.enabled else None
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


async def close_services(services: Services) -> None:
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
