"""Prometheus metrics, served on a listener of their own (``metrics:`` in the config).

Every node has its own :class:`~prometheus_client.CollectorRegistry`, so several nodes in
one process (the tests) never share counters.  HTTP requests are counted by an aiohttp
middleware (by method, route template and status, so user IDs never become labels),
persisted events by a room listener, and /sync long-polls are read from the notifier.
"""

from __future__ import annotations

import asyncio
import time

from aiohttp import web
from aiohttp.typedefs import Middleware
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from homeserver.admin.ports import SyncWaiters
from homeserver.common.http import Handler
from homeserver.config import ConfigError
from homeserver.rooms.cache import RoomCache
from homeserver.storage.events import StoredEvent

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"})
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


def event_class(event: StoredEvent) -> str:
    """A small, fixed set of labels for event types (clients may invent any type)."""
    kind = event.type
    if kind == "m.room.member":
        return "membership"
    if event.state_key is not None:
        return "state"
    if kind in ("m.room.message", "m.room.encrypted", "m.reaction", "m.room.redaction"):
        return kind.rsplit(".", 1)[-1]
    return "other"


class NodeMetrics:
    """The node's metrics; ``middleware`` and ``on_event`` (a RoomService listener) feed
    them."""

    def __init__(self, notifier: SyncWaiters) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.requests = Counter(
            "kairan_http_requests",
            "HTTP requests answered, by method, route and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "kairan_http_request_duration_seconds",
            "Time to answer HTTP requests (long-polling /sync included), by method and route.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.events = Counter(
            "kairan_events_persisted",
            "Events persisted, by class: message, encrypted, reaction, redaction, "
            "membership, state, other.",
            ["type_class"],
            registry=self.registry,
        )
        self.sync_waiters = Gauge(
            "kairan_sync_waiters",
            "/sync requests currently waiting for news.",
            registry=self.registry,
        )
        self.sync_waiters.set_function(lambda: notifier.waiting)

    def on_event(self, room: RoomCache, event: StoredEvent) -> None:
        self.events.labels(event_class(event)).inc()

    def middleware(self) -> Middleware:
        @web.middleware
        async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
            start = time.perf_counter()
            status = 500
            try:
                response = await handler(request)
                status = response.status
                return response
            except web.HTTPException as e:
                status = e.status
                raise
            except asyncio.CancelledError:
                status = 499  # the client went away (nginx's code for it)
                raise
            finally:
                method = request.method if request.method in METHODS else "OTHER"
                route = _route(request)
                self.requests.labels(method, route, str(status)).inc()
                self.latency.labels(method, route).observe(time.perf_counter() - start)

        return metrics_middleware

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _route(request: web.Request) -> str:
    """The route's template (``/_matrix/client/v3/rooms/{room_id}/send/...``)."""
    resource = request.match_info.route.resource
    if resource is None:
        return "unmatched"
    return resource.canonical


async def start_listener(metrics: NodeMetrics, host: str, port: int) -> web.AppRunner:
    """Serve ``GET /metrics`` on ``host:port``; a ConfigError when the port is taken."""

    async def scrape(request: web.Request) -> web.Response:
        response = web.Response(body=metrics.render())
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    app = web.Application()
    app.router.add_get("/metrics", scrape)
    app.router.add_get("/", scrape)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as e:
        await runner.cleanup()
        raise ConfigError(f"cannot listen for metrics on {host}:{port}: {e.strerror}") from e
    return runner


METRICS = web.AppKey("metrics", NodeMetrics)
