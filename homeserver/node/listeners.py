"""Opening the node's listeners: one aiohttp site per configured address, each over TLS
when it has a certificate."""

from __future__ import annotations

import ssl

from aiohttp import web

from homeserver.config import Config, ConfigError
from homeserver.config.listeners import Listener


def listener_ssl(listener: Listener) -> ssl.SSLContext | None:
    if listener.tls_certificate is None or listener.tls_private_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(listener.tls_certificate, listener.tls_private_key)
    except (OSError, ssl.SSLError) as e:
        raise ConfigError(f"cannot load TLS certificate/key: {e}") from e
    return context


def ssl_context(config: Config) -> ssl.SSLContext | None:
    """The TLS context of the node's first listener."""
    return listener_ssl(config.listener)


async def open_listener(
    app: web.Application, listener: Listener, shutdown_grace_s: float
) -> web.AppRunner:
    """Serve ``app`` on ``listener``; ConfigError in one line if the address is taken.

    On SIGTERM, requests in flight get ``shutdown_grace_s``; then they (long-polls above
    all) are cancelled, so the node stops within seconds rather than after the longest
    /sync."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=shutdown_grace_s)
    await runner.setup()
    site = web.TCPSite(runner, listener.host, listener.port, ssl_context=listener_ssl(listener))
    try:
        await site.start()
    except OSError as e:
        await runner.cleanup()
        raise ConfigError(f"cannot listen on {listener.host}:{listener.port}: {e.strerror}") from e
    return runner
