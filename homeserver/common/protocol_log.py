"""The HTTP server's own log (aiohttp's request handler), kept short for malformed requests.

aiohttp answers a request it cannot parse (a request line or header over its limits, a bad
method, broken chunking) with a plain 400 and logs an ERROR with a full traceback: anyone,
without an access token, could fill the log with one request a second. Here such a failure
is one WARNING line at most every ``interval`` seconds, with the count of those left out;
anything else the handler logs (a crash outside the middleware) is left as it is.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from aiohttp.http import HttpProcessingError

#: Longest request line (method, path and query, version) the node reads. aiohttp's default
#: is 8190 bytes; a longer path then reaches the routes, which answer a Matrix error
#: (404 M_UNRECOGNIZED for no route) instead of aiohttp's plain 400.
MAX_REQUEST_LINE = 16 * 1024

#: Seconds between two lines about malformed requests.
INTERVAL = 60.0


class MalformedRequestFilter(logging.Filter):
    """One line about a malformed request per ``interval``, without the traceback."""

    def __init__(
        self, interval: float = INTERVAL, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self.interval = interval
        self.clock = clock
        self.suppressed = 0
        self._last: float | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if not isinstance(error, HttpProcessingError):
            return True
        now = self.clock()
        if self._last is not None and now - self._last < self.interval:
            self.suppressed += 1
            return False
        remote = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
        message = f"malformed HTTP request from {remote}: {error.code} {error.message[:100]!r}"
        if self.suppressed:
            message += f" ({self.suppressed} more in the last {self.interval:.0f}s not logged)"
        record.msg, record.args = message, ()
        record.exc_info, record.exc_text = None, None
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        self._last = now
        self.suppressed = 0
        return True


#: The logger the node's request handlers use (aiohttp's ``aiohttp.server`` otherwise).
log = logging.getLogger("homeserver.http.server")
FILTER = MalformedRequestFilter()
log.addFilter(FILTER)

#: ``handler_args`` of the node's applications: the request line limit and the logger.
HANDLER_ARGS: dict[str, Any] = {"max_line_size": MAX_REQUEST_LINE, "logger": log}
