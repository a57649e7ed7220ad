"""Local media as other servers download it (``/_matrix/federation/v1/media/*``):
multipart/mixed answers, metadata then content."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import aiohttp
from aiohttp import hdrs, web

from federation.errors import MatrixError
from homeserver.accounts.throttle import Buckets
from homeserver.common.http import content_disposition
from homeserver.federation.ports import LocalMedia
from homeserver.media.ports import MediaFile
from homeserver.media.thumbnail_sizes import METHODS

#: How long a federation download waits for local media still being uploaded.
SERVE_WAIT_MS = 20_000
#: Larger requested thumbnail dimensions are treated as this (as for clients).
MAX_THUMBNAIL_DIMENSION = 10_000


class LocalMediaServer:
    def __init__(self, media: LocalMedia, limiter: Buckets) -> None:
        self.media = media
        #: ``rc_media_download``, per requesting server.
        self.limiter = limiter

    async def serve(self, origin: str, media_id: str) -> web.StreamResponse:
        """The federation answer for local media: multipart/mixed, metadata then content."""
        self.limiter.check(f"server:{origin}")
        found = await self.media.download(
            self.media.server_name, media_id, timeout_ms=SERVE_WAIT_MS
        )
        return await _multipart(found)

    async def serve_thumbnail(
        self, origin: str, media_id: str, query: Mapping[str, str]
    ) -> web.StreamResponse:
        """The federation answer for a thumbnail of local media (multipart/mixed too)."""
        self.limiter.check(f"server:{origin}")
        method = query.get("method", "scale")
        if method not in METHODS:
            raise MatrixError(400, "M_INVALID_PARAM", "'method' must be 'crop' or 'scale'")
        found = await self.media.thumbnail(
            self.media.server_name,
            media_id,
            width=_dimension(query, "width"),
            height=_dimension(query, "height"),
            method="crop" if method == "crop" else "scale",
            timeout_ms=SERVE_WAIT_MS,
        )
        return await _multipart(found)


async def _multipart(found: MediaFile) -> web.StreamResponse:
    writer = aiohttp.MultipartWriter("mixed")
    writer.append_json({})
    headers: dict[str, str] = {
        hdrs.CONTENT_TYPE: found.content_type,
        hdrs.CONTENT_DISPOSITION: content_disposition("attachment", found.filename),
    }
    if found.data is not None:
        writer.append(found.data, headers)
    else:
        assert found.path is not None
        file = await asyncio.to_thread(open, found.path, "rb")
        writer.append(file, headers)
    return web.Response(body=writer)


def _dimension(query: Mapping[str, str], name: str) -> int:
    raw = query.get(name)
    if raw is None:
        raise MatrixError(400, "M_MISSING_PARAM", f"Missing '{name}'")
    if not (raw.isascii() and raw.isdigit()) or not raw.lstrip("0"):
        raise MatrixError(400, "M_INVALID_PARAM", f"'{name}' must be a positive integer")
    digits = raw.lstrip("0")
    if len(digits) > len(str(MAX_THUMBNAIL_DIMENSION)):
        return MAX_THUMBNAIL_DIMENSION
    return min(int(digits), MAX_THUMBNAIL_DIMENSION)
