"""One log line per request: method, path, status and milliseconds.

For a development node (``kairan serve --dev``, or ``--log-requests``): a newcomer sees what
Element or any other client sends, and what the node answered.  The line is written when
the answer is complete (for a /sync long-poll, when it returns), at INFO on this module's
logger::

    GET /_matrix/client/v3/sync?timeout=30000&access_token=<redacted> 200 30012.4ms

Access tokens never reach the log: no header is logged (so neither is ``Authorization``),
and the value of an ``access_token`` query parameter is replaced.  The path and query are
logged as sent, percent-encoded: a decoded one could carry line breaks into the log.
"""

from __future__ import annotations

import asyncio
import logging
import time
from urllib.parse import unquote

from aiohttp import web

from homeserver.common.http import Handler

log = logging.getLogger(__name__)

#: Query parameters whose values are secrets.
SECRET_PARAMETERS = frozenset({"access_token"})
REDACTED = "<redacted>"
CLIENT_CLOSED = 499  # the client went away before the answer (nginx's code for it)


def redact_query(raw_query: str) -> str:
    """``raw_query`` (percent-encoded, without ``?``) with secret parameters' values replaced."""
    parts = []
    for part in raw_query.split("&"):
        name, equals, _ = part.partition("=")
        if unquote(name) in SECRET_PARAMETERS:
            part = f"{name}{equals or '='}{REDACTED}"
        parts.append(part)
    return "&".join(parts)


def loggable_target(request: web.Request) -> str:
    """The request's path and query as sent, secrets redacted."""
    path, question, query = request.raw_path.partition("?")
    return f"{path}?{redact_query(query)}" if question else path


@web.middleware
async def access_log_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
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
        status = CLIENT_CLOSED
        raise
    finally:
        elapsed_ms = (time.perf_counter() - start) * 1000
        log.info("%s %s %d %.1fms", request.method, loggable_target(request), status, elapsed_ms)
