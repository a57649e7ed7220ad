"""HTTP plumbing shared by the APIs: errors as Matrix JSON, CORS, bodies, auth, rate limits."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from aiohttp import web

from homeserver.common.errors import (
    MatrixError,
    bad_json,
    invalid_param,
    limit_exceeded,
    missing_token,
    not_json,
    too_large,
    unrecognized,
)

log = logging.getLogger(__name__)

#: The network zone of the listener an application serves (``listeners`` in kairan.yaml).
ZONE = web.AppKey("zone", str)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, HEAD, POST, PUT, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": "X-Requested-With, Content-Type, Authorization, Date",
    "Access-Control-Expose-Headers": "Content-Disposition",
}
MAX_JSON_BODY = 1024 * 1024


#: Characters that may appear in a quoted-string file name as they are.
_PLAIN_FILENAME = frozenset(chr(c) for c in range(0x20, 0x7F)) - {'"', "\\"}


def content_disposition(kind: str, filename: str | None) -> str:
    """``inline``/``attachment`` with the file name: quoted when plain ASCII, otherwise in
    RFC 5987 ``filename*=utf-8''...`` form (RFC 6266), so Japanese names survive."""
    if not filename:
        return kind
    if set(filename) <= _PLAIN_FILENAME:
        return f'{kind}; filename="{filename}"'
    return f"{kind}; filename*=utf-8''{quote(filename, safe='')}"


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8"),
        status=status,
        content_type="application/json",
    )


def error_response(error: MatrixError) -> web.Response:
    response = json_response(error.to_json(), error.status)
    if error.errcode == "M_LIMIT_EXCEEDED":
        value = error.extra.get("retry_after_ms", 1000)
        retry_ms = value if isinstance(value, int) else 1000
        response.headers["Retry-After"] = str(max(1, (retry_ms + 999) // 1000))
    return response


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure becomes Matrix JSON; anything unexpected is a logged 500 M_UNKNOWN."""
    if request.method == "OPTIONS":
        response: web.StreamResponse = web.Response(status=204)
    else:
        try:
            if "\x00" in request.path or any("\x00" in k + v for k, v in request.query.items()):
                # No ID or parameter contains U+0000, and PostgreSQL text cannot hold it.
                raise invalid_param("NUL characters are not allowed in paths or parameters")
            response = await handler(request)
        except MatrixError as e:
            response = error_response(e)
        except web.HTTPRequestEntityTooLarge:
            response = error_response(too_large("Request body too large"))
        except web.HTTPMethodNotAllowed:
            response = error_response(MatrixError(405, "M_UNRECOGNIZED", "Unrecognized request"))
        except web.HTTPNotFound:
            response = error_response(unrecognized())
        except web.HTTPException as e:
            if e.status >= 400:
                response = error_response(MatrixError(e.status, "M_UNKNOWN", e.reason or "Error"))
            else:
                raise
        except Exception:
            log.exception("unhandled error in %s %s", request.method, request.path)
            response = error_response(MatrixError(500, "M_UNKNOWN", "Internal server error"))
    for key, value in CORS_HEADERS.items():
        response.headers.setdefault(key, value)
    return response


async def read_body(request: web.Request, limit: int) -> bytes:
    """The request body, read up to ``limit + 1`` bytes (more than ``limit``: too large).

    One ``read(n)`` returns what has arrived so far, which for a body of more than a few
    network packets is only its beginning: read until the end or past the limit."""
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        chunk = await request.content.read(limit + 1 - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


async def read_json(
    request: web.Request, *, allow_empty: bool = False, limit: int = MAX_JSON_BODY
) -> dict[str, Any]:
    """The request body as a JSON object, or the right Matrix error."""
    if request.content_length is not None and request.content_length > limit:
        raise too_large(f"Request body exceeds {limit} bytes")
    raw = await read_body(request, limit)
    if len(raw) > limit:
        raise too_large(f"Request body exceeds {limit} bytes")
    if not raw.strip():
        if allow_empty:
            return {}
        raise not_json("Content not JSON.")
    try:
        body = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise not_json(f"Content not JSON: {e}") from None
    if not isinstance(body, dict):
        raise bad_json("Request body must be a JSON object")
    if b"\\u0000" in raw and _has_nul(body):
        # PostgreSQL text cannot hold U+0000 (a 500 on PostgreSQL, stored on SQLite): refuse
        # it the same way on both; no Matrix ID, name or key needs it.
        raise bad_json("NUL characters (\\u0000) are not allowed")
    return body


def _has_nul(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def bearer_token(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise missing_token()
    return token.strip()


def optional_string(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise bad_json(f"'{key}' must be a string")
    return value


def required_string(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if value is None:
        raise MatrixError(400, "M_MISSING_PARAM", f"Missing '{key}'")
    if not isinstance(value, str):
        raise bad_json(f"'{key}' must be a string")
    return value


def query_int(
    request: web.Request, name: str, default: int, *, minimum: int = 0, maximum: int = 2**31
) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise MatrixError(400, "M_INVALID_PARAM", f"'{name}' must be an integer") from None
    return max(minimum, min(maximum, value))


class RateLimiter:
    """Token buckets keyed by user or IP."""

    def __init__(self, per_second: float, burst: int) -> None:
        self.per_second = per_second
        self.burst = burst
        self._buckets: dict[str, tuple[float, float]] = {}

    def check(self, key: str) -> None:
        now = time.monotonic()
        tokens, last = self._buckets.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.per_second)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            retry_ms = int((1.0 - tokens) / self.per_second * 1000) + 1
            raise limit_exceeded(retry_ms)
        self._buckets[key] = (tokens - 1.0, now)
        if len(self._buckets) > 100_000:
            self._buckets.clear()
