"""Media across servers: serving local media to other servers, fetching theirs for clients.

Serving: ``GET /_matrix/federation/v1/media/download/{mediaId}`` (and ``.../thumbnail/``)
answers a ``multipart/mixed`` body (Matrix 1.11): a JSON metadata part (``{}``), then the
content with its Content-Type and Content-Disposition.

Fetching: remote media is downloaded once over federation (the authenticated v1 endpoint,
following a ``Location`` part once; servers without it get the legacy
``/_matrix/media/v3/download``), written like an upload
(``tmp/``, fsync, rename) under ``remote_content/`` with a row in ``remote_media``, and then
served and thumbnailed from the cache (bounded: see ``media_cache``).  Content larger than
``max_upload_size`` is refused with 502 M_TOO_LARGE while it arrives; nothing of it is kept.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import urllib.parse
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import hdrs
from aiohttp.multipart import content_disposition_filename, parse_content_disposition

from federation.client import FederationClient, UnreachableError, federation_path
from federation.errors import MatrixError
from federation.identifiers import is_valid_server_name
from homeserver.common.clock import Clock
from homeserver.config import RemoteMediaCache as CacheSettings
from homeserver.federation.media_cache import RemoteMediaCache
from homeserver.media.files import Receiver, install
from homeserver.media.ports import MediaFile
from homeserver.media.service import (
    DEFAULT_CONTENT_TYPE,
    MAX_FILENAME_CHARS,
    MEDIA_ID_RE,
    frozen_legacy_media,
    legacy_refuses,
)
from homeserver.storage import remote_cache
from homeserver.storage.database import Database

log = logging.getLogger(__name__)

FETCH_TIMEOUT_S = 120.0
#: How long a federation download waits for local media still being uploaded.
SERVE_WAIT_MS = 20_000
#: The metadata part of a multipart answer is small; more is not read.
MAX_METADATA_BYTES = 64 * 1024
READ_CHUNK = 64 * 1024
#: Larger requested thumbnail dimensions are treated as this (as for clients).
MAX_THUMBNAIL_DIMENSION = 10_000


def _not_found() -> MatrixError:
    return MatrixError(404, "M_NOT_FOUND", "Remote media not found")


def _bad_gateway(message: str) -> MatrixError:
    return MatrixError(502, "M_UNKNOWN", f"Cannot fetch remote media: {message}")


def _too_large(limit: int) -> MatrixError:
    return MatrixError(502, "M_TOO_LARGE", f"Remote media is larger than {limit} bytes")


class _Fallback(Exception):
    """The server does not have the authenticated federation media endpoint."""


class FederatedMedia:
    """Other servers' media, fetched and cached (implements
    homeserver.media.ports.RemoteMediaSource)."""

    def __init__(
        self,
        client: FederationClient,
        db: Database,
        clock: Clock,
        root: Path,
        receiver: Receiver,
        *,
        authenticated_media: bool,
        settings: CacheSettings | None = None,
    ) -> None:
        self.client = client
        self.db = db
        self.clock = clock
        #: Writes fetched content to ``tmp/`` (with the upload size limit).
        self.receiver = receiver
        #: What is fetched is stored as authenticated media (see legacy_refuses).
        self.authenticated_media = authenticated_media
        self.cache = RemoteMediaCache(db, clock, root, settings or CacheSettings())

    def _content_path(self, file_id: str) -> Path:
        return self.cache.content_path(file_id)

    def _thumbnail_dir(self, file_id: str) -> Path:
        return self.cache.thumbnail_dir(file_id)

    def start(self) -> None:
        self.cache.start()

    async def close(self) -> None:
        await self.cache.close()

    async def purge(self, before_ts: int) -> int:
        return await self.cache.purge(before_ts)

    # ------------------------------------------------------------- fetching remote media

    async def fetch(
        self, server_name: str, media_id: str, *, download: bool = True, legacy: bool = False
    ) -> tuple[MediaFile, Path]:
        if not _fetchable(server_name) or not MEDIA_ID_RE.fullmatch(media_id):
            raise _not_found()
        added = False
        # One download per media however many clients ask at once; never while it is
        # being removed from the cache.
        async with self.cache.lock(server_name, media_id):
            record = await self._cached(server_name, media_id)
            if legacy and legacy_refuses(
                self.authenticated_media, record is None or record.authenticated
            ):
                # As Synapse: the frozen endpoints neither fetch nor serve what was fetched
                # for the authenticated ones.
                raise frozen_legacy_media()
            if record is None and not download:
                raise _not_found()
            if record is None:
                record = await self._download(server_name, media_id)
                added = True
            else:
                await self.cache.accessed(record)
            release = self.cache.lease(record.file_id)
        if added:
            self.cache.added()
        found = MediaFile(
            self._content_path(record.file_id),
            record.content_type,
            record.upload_name,
            record.size,
            release=release,
        )
        return found, self._thumbnail_dir(record.file_id)

    async def _cached(self, server_name: str, media_id: str) -> remote_cache.RemoteMedia | None:
        async with self.db.read() as conn:
            record = await remote_cache.get_media(conn, server_name, media_id)
        if record is None:
            return None
        if not await asyncio.to_thread(self._content_path(record.file_id).is_file):
            log.warning("cached remote media %s/%s lost its file", server_name, media_id)
            return None
        return record

    async def _download(self, server_name: str, media_id: str) -> remote_cache.RemoteMedia:
        try:
            try:
                return await self._download_v1(server_name, media_id)
            except _Fallback:
                return await self._download_legacy(server_name, media_id)
        except UnreachableError as e:
            log.info("cannot fetch media %s/%s: %s", server_name, media_id, e)
            raise _bad_gateway("the server is unreachable") from None
        except (aiohttp.ClientPayloadError, ValueError) as e:
            log.info("bad media answer from %s for %s: %s", server_name, media_id, e)
            raise _bad_gateway("the server's answer is malformed") from None

    async def _download_v1(self, server_name: str, media_id: str) -> remote_cache.RemoteMedia:
        path = federation_path("v1", "media/download", media_id)
        async with self.client.stream(
            server_name, path, query={"timeout_ms": "20000"}, timeout_s=FETCH_TIMEOUT_S
        ) as response:
            if response.status != 200:
                errcode = await _errcode(response)
                if response.status in (400, 404, 405, 501) and errcode in (
                    None,
                    "M_UNRECOGNIZED",
                ):
                    raise _Fallback()
                raise _remote_error(response.status, errcode)
            if response.content_type != "multipart/mixed":
                raise _bad_gateway(f"expected multipart/mixed, got {response.content_type}")
            reader = aiohttp.MultipartReader(response.headers, response.content)
            metadata = await reader.next()
            if not isinstance(metadata, aiohttp.BodyPartReader):
                raise _bad_gateway("no metadata part")
            raw = await metadata.read_chunk(MAX_METADATA_BYTES)
            if not isinstance(json.loads(raw or b"{}"), dict):
                raise _bad_gateway("the metadata part is not a JSON object")
            await metadata.release()
            part = await reader.next()
            if not isinstance(part, aiohttp.BodyPartReader):
                raise _bad_gateway("no content part")
            location = part.headers.get(hdrs.LOCATION)
            if location is None:
                return await self._store(server_name, media_id, part.headers, _part_chunks(part))
        # The content is elsewhere: fetch it from there (once, no further redirects).
        async with self.client.stream_url(location, timeout_s=FETCH_TIMEOUT_S) as response:
            if response.status != 200:
                raise _bad_gateway(f"the redirect target answered {response.status}")
            return await self._store(
                server_name, media_id, response.headers, response.content.iter_chunked(READ_CHUNK)
            )

    async def _download_legacy(self, server_name: str, media_id: str) -> remote_cache.RemoteMedia:
        path = "/_matrix/media/v3/download/{}/{}".format(
            urllib.parse.quote(server_name, safe=""), urllib.parse.quote(media_id, safe="")
        )
        async with self.client.stream(
            server_name, path, query={"allow_remote": "false"}, timeout_s=FETCH_TIMEOUT_S
        ) as response:
            if response.status != 200:
                raise _remote_error(response.status, await _errcode(response))
            return await self._store(
                server_name, media_id, response.headers, response.content.iter_chunked(READ_CHUNK)
            )

    async def _store(
        self,
        server_name: str,
        media_id: str,
        headers: Any,
        chunks: AsyncIterator[bytes],
    ) -> remote_cache.RemoteMedia:
        limit = self.receiver.max_bytes
        length = headers.get(hdrs.CONTENT_LENGTH)
        if length is not None and length.isdigit() and int(length) > limit:
            raise _too_large(limit)
        try:
            tmp, size, _digest = await self.receiver.receive(chunks)
        except MatrixError as e:
            if e.errcode == "M_TOO_LARGE":
                raise _too_large(limit) from None
            raise
        file_id = secrets.token_hex(16)
        await install(tmp, self._content_path(file_id))
        now = self.clock.now_ms()
        record = remote_cache.RemoteMedia(
            server_name=server_name,
            media_id=media_id,
            file_id=file_id,
            content_type=_content_type(headers.get(hdrs.CONTENT_TYPE)),
            upload_name=_filename(headers.get(hdrs.CONTENT_DISPOSITION)),
            size=size,
            fetched_ts=now,
            last_access_ts=now,
            authenticated=self.authenticated_media,
        )
        async with self.db.write() as conn:
            await remote_cache.put_media(conn, record)
        return record


def _fetchable(server_name: str) -> bool:
    """A server name worth contacting: valid, and a DNS name has no empty or long labels."""
    if not is_valid_server_name(server_name):
        return False
    host = server_name.rsplit(":", 1)[0] if not server_name.endswith("]") else server_name
    if host.startswith("["):
        return True
    return all(0 < len(label) <= 63 for label in host.split("."))


async def _part_chunks(part: aiohttp.BodyPartReader) -> AsyncIterator[bytes]:
    while chunk := await part.read_chunk(READ_CHUNK):
        yield chunk


async def _errcode(response: aiohttp.ClientResponse) -> str | None:
    try:
        body = json.loads(await response.content.read(MAX_METADATA_BYTES))
    except (ValueError, UnicodeDecodeError, RecursionError, aiohttp.ClientError):
        return None
    errcode = body.get("errcode") if isinstance(body, dict) else None
    return errcode if isinstance(errcode, str) else None


def _remote_error(status: int, errcode: str | None) -> MatrixError:
    if status == 404:
        return _not_found()
    if errcode == "M_TOO_LARGE":
        return MatrixError(502, "M_TOO_LARGE", "The remote server refuses to serve this media")
    return _bad_gateway(f"the server answered {status} {errcode or ''}".strip())


def _content_type(value: str | None) -> str:
    value = (value or "").strip()
    if not value or len(value) > 255 or not value.isascii() or not value.isprintable():
        return DEFAULT_CONTENT_TYPE
    return value


def _filename(value: str | None) -> str | None:
    if not value:
        return None
    try:
        _kind, params = parse_content_disposition(value)
        name = content_disposition_filename(params, "filename")
    except (ValueError, UnicodeDecodeError):
        return None
    if not name or len(name) > MAX_FILENAME_CHARS or "\x00" in name:
        return None
    return name
