"""The content repository: upload, create, download, thumbnail, config.

The authenticated ``/_matrix/client/v1/media/*`` endpoints (Matrix 1.11) and the deprecated
unauthenticated ``/_matrix/media/{v3,r0}/*`` ones, which clients still fall back to.  With
``enable_authenticated_media`` (the default, as Synapse) the unauthenticated download and
thumbnail endpoints are frozen: they serve only media stored while it was off.
"""

from __future__ import annotations

from aiohttp import hdrs, web
from aiohttp.abc import AbstractStreamWriter

from homeserver.client_api.common import client_ip, requester, services
from homeserver.common.errors import invalid_param, missing_param
from homeserver.common.http import CORS_HEADERS, content_disposition, json_response, query_int
from homeserver.media.ports import MediaFile
from homeserver.media.service import MAX_WAIT_MS
from homeserver.media.thumbnail_sizes import METHODS, Method

routes = web.RouteTableDef()

V1 = "/_matrix/client/v1/media"
LEGACY = ("/_matrix/media/v3", "/_matrix/media/r0")
UPLOAD_CHUNK = 64 * 1024
DEFAULT_WAIT_MS = 20_000
#: Larger requested dimensions are treated as this (no image that big is thumbnailed anyway).
MAX_THUMBNAIL_DIMENSION = 10_000

#: The spec's list of types safe to serve with ``Content-Disposition: inline``.
INLINE_TYPES = frozenset(
    {
        "text/css", "text/plain", "text/csv", "application/json", "application/ld+json",
        "image/jpeg", "image/gif", "image/png", "image/apng", "image/webp", "image/avif",
        "video/mp4", "video/webm", "video/ogg", "video/quicktime",
        "audio/mp4", "audio/webm", "audio/aac", "audio/mpeg", "audio/ogg", "audio/wave",
        "audio/wav", "audio/x-wav", "audio/x-pn-wav", "audio/flac", "audio/x-flac",
    }
)  # fmt: skip
CONTENT_SECURITY_POLICY = (
    "sandbox; default-src 'none'; script-src 'none'; plugin-types application/pdf; "
    "style-src 'unsafe-inline'; media-src 'self'; object-src 'self';"
)


def media_response(media: MediaFile, filename: str | None, *, private: bool) -> web.StreamResponse:
    base_type = media.content_type.split(";")[0].strip().lower()
    kind = "inline" if base_type in INLINE_TYPES else "attachment"
    headers = {
        hdrs.CONTENT_TYPE: media.content_type,
        hdrs.CONTENT_DISPOSITION: content_disposition(kind, filename),
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "X-Content-Type-Options": "nosniff",
        "Cross-Origin-Resource-Policy": "cross-origin",
        hdrs.CACHE_CONTROL: f"{'private' if private else 'public'}, max-age=86400",
        # Sent before the handler returns (see _send), so the middleware cannot add these.
        **CORS_HEADERS,
    }
    if media.data is not None:
        return web.Response(body=media.data, headers=headers)
    assert media.path is not None
    return _FileResponse(media.path, headers=headers)


class _FileResponse(web.FileResponse):
    """A file response that may be sent before its handler returns (see ``_send``):
    FileResponse.prepare would send the file again when aiohttp prepares the response the
    handler returned; a sent one is left as it is, as any StreamResponse."""

    async def prepare(self, request: web.BaseRequest) -> AbstractStreamWriter | None:
        if self.prepared:
            return await web.StreamResponse.prepare(self, request)
        return await super().prepare(request)


def _dimension(request: web.Request, name: str) -> int:
    raw = request.query.get(name)
    if raw is None:
        raise missing_param(f"Missing '{name}'")
    # ASCII digits only: int() would also take "+5", " 5", "1_0" and other scripts' digits.
    significant = raw.lstrip("0")
    if not (raw.isascii() and raw.isdigit()) or not significant:
        raise invalid_param(f"'{name}' must be a positive integer")
    if len(significant) > len(str(MAX_THUMBNAIL_DIMENSION)):
        return MAX_THUMBNAIL_DIMENSION
    return min(int(significant), MAX_THUMBNAIL_DIMENSION)


def _method(request: web.Request) -> Method:
    raw = request.query.get("method", "scale")
    for method in METHODS:
        if raw == method:
            return method
    raise invalid_param("'method' must be 'crop' or 'scale'")


def _timeout_ms(request: web.Request) -> int:
    return query_int(request, "timeout_ms", DEFAULT_WAIT_MS, minimum=0, maximum=MAX_WAIT_MS)


# ---------------------------------------------------------------- upload


@routes.post("/_matrix/media/v3/upload")
@routes.post("/_matrix/media/r0/upload")
async def upload(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    svc.rate_limiter.check(f"media:{who.user_id}")
    uri = await svc.media.upload(
        who.user_id,
        request.content.iter_chunked(UPLOAD_CHUNK),
        content_type=request.headers.get(hdrs.CONTENT_TYPE),
        filename=request.query.get("filename"),
        content_length=request.content_length,
    )
    return json_response({"content_uri": uri})


@routes.post("/_matrix/media/v1/create")
async def create(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    svc.rate_limiter.check(f"media:{who.user_id}")
    uri, expires_at = await svc.media.create(who.user_id)
    return json_response({"content_uri": uri, "unused_expires_at": expires_at})


@routes.put("/_matrix/media/v3/upload/{server_name}/{media_id}")
async def upload_to(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    svc.rate_limiter.check(f"media:{who.user_id}")
    await svc.media.upload_to(
        who.user_id,
        request.match_info["server_name"],
        request.match_info["media_id"],
        request.content.iter_chunked(UPLOAD_CHUNK),
        content_type=request.headers.get(hdrs.CONTENT_TYPE),
        filename=request.query.get("filename"),
        content_length=request.content_length,
    )
    return json_response({})


# ---------------------------------------------------------------- config


@routes.get(V1 + "/config")
@routes.get("/_matrix/media/v3/config")
@routes.get("/_matrix/media/r0/config")
async def config(request: web.Request) -> web.Response:
    svc = services(request)
    await requester(request)
    return json_response({"m.upload.size": svc.media.max_upload_bytes})


# ---------------------------------------------------------------- download and thumbnail


def _fetch_remote(request: web.Request, *, private: bool) -> bool:
    """Whether remote media not cached yet is fetched: not when the client says
    ``allow_remote=false`` (servers falling back to the legacy endpoints, against loops),
    and by the legacy endpoints only while they are not frozen (as Synapse)."""
    if request.query.get("allow_remote") == "false":
        return False
    return private or not services(request).media.authenticated_media


async def _send(
    request: web.Request, media: MediaFile, filename: str | None, *, private: bool
) -> web.StreamResponse:
    """Send the response here, not after returning it: a cached remote file is leased
    (never evicted) until it has been sent."""
    try:
        response = media_response(media, filename, private=private)
        await response.prepare(request)
        await response.write_eof()
        return response
    finally:
        media.close()


async def _download(request: web.Request, *, private: bool) -> web.StreamResponse:
    media = await services(request).media.download(
        request.match_info["server_name"],
        request.match_info["media_id"],
        timeout_ms=_timeout_ms(request),
        fetch_remote=_fetch_remote(request, private=private),
        legacy=not private,
    )
    filename = request.match_info.get("file_name") or media.filename
    return await _send(request, media, filename, private=private)


async def _thumbnail(request: web.Request, *, private: bool) -> web.StreamResponse:
    width = _dimension(request, "width")
    height = _dimension(request, "height")
    method = _method(request)
    media = await services(request).media.thumbnail(
        request.match_info["server_name"],
        request.match_info["media_id"],
        width=width,
        height=height,
        method=method,
        timeout_ms=_timeout_ms(request),
        fetch_remote=_fetch_remote(request, private=private),
        legacy=not private,
    )
    return await _send(request, media, media.filename, private=private)


async def _limit(request: web.Request, *, private: bool) -> None:
    """``rc_media_download``: per user on the authenticated endpoints (after the token is
    checked), per address on the unauthenticated ones; 429 over it."""
    who = (await requester(request)).user_id if private else None
    services(request).media_limiter.check(f"user:{who}" if who else f"ip:{client_ip(request)}")


@routes.get(V1 + "/download/{server_name}/{media_id}")
@routes.get(V1 + "/download/{server_name}/{media_id}/{file_name:.+}")
async def download(request: web.Request) -> web.StreamResponse:
    await _limit(request, private=True)
    return await _download(request, private=True)


@routes.get(V1 + "/thumbnail/{server_name}/{media_id}")
async def thumbnail(request: web.Request) -> web.StreamResponse:
    await _limit(request, private=True)
    return await _thumbnail(request, private=True)


async def legacy_download(request: web.Request) -> web.StreamResponse:
    await _limit(request, private=False)
    return await _download(request, private=False)


async def legacy_thumbnail(request: web.Request) -> web.StreamResponse:
    await _limit(request, private=False)
    return await _thumbnail(request, private=False)


for _prefix in LEGACY:
    routes.get(_prefix + "/download/{server_name}/{media_id}")(legacy_download)
    routes.get(_prefix + "/download/{server_name}/{media_id}/{file_name:.+}")(legacy_download)
    routes.get(_prefix + "/thumbnail/{server_name}/{media_id}")(legacy_thumbnail)
