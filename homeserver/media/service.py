"""The content repository: uploads on disk, their rows in the database, thumbnails.

Files live under ``config.media_path``:

- ``local_content/<id[0:2]>/<id[2:4]>/<media_id>``: the uploaded bytes;
- ``thumbnails/<id[0:2]>/<id[2:4]>/<media_id>/<w>x<h>-<method>.<jpg|png>``: thumbnails;
- ``tmp/``: files being written.

Every file is written to ``tmp/``, flushed and fsynced, then renamed into place; an upload's
row is written only after its file is in place, so a crash can leave an orphan file but
never a row pointing at a missing or half-written one.  Thumbnails are made and cached by
``thumbnails.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
import string
from collections.abc import AsyncIterable
from dataclasses import replace
from pathlib import Path

from homeserver.common.clock import Clock
from homeserver.common.errors import MatrixError, forbidden, invalid_param, not_found
from homeserver.config import Config
from homeserver.media.files import Receiver, install
from homeserver.media.filters import Upload, UploadFilterChain, apply_filters
from homeserver.media.ports import MediaFile, RemoteMediaSource
from homeserver.media.thumbnail_sizes import Method
from homeserver.media.thumbnail_worker import ThumbnailWorkers
from homeserver.media.thumbnails import Thumbnails
from homeserver.storage import media as store
from homeserver.storage.database import Database
from homeserver.storage.media import MediaRecord

log = logging.getLogger(__name__)

MEDIA_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
MEDIA_ID_LENGTH = 24
_ALPHABET = string.ascii_letters + string.digits
DEFAULT_CONTENT_TYPE = "application/octet-stream"
MAX_FILENAME_CHARS = 255
#: How long a media ID from ``/create`` waits for its content.
PENDING_LIFETIME_MS = 24 * 60 * 60 * 1000
MAX_PENDING_PER_USER = 20
#: The longest a download of pending media waits for it (the client's ``timeout_ms`` is capped).
MAX_WAIT_MS = 60_000


def not_yet_uploaded() -> MatrixError:
    return MatrixError(504, "M_NOT_YET_UPLOADED", "Content has not yet been uploaded")


def frozen_legacy_media() -> MatrixError:
    """What the frozen unauthenticated endpoints answer for media they no longer serve (as
    Synapse: 404 M_NOT_FOUND)."""
    return not_found("Not found: this media is served by /_matrix/client/v1/media only")


def legacy_refuses(authenticated_media: bool, authenticated: bool) -> bool:
    """Whether the frozen unauthenticated endpoints refuse media stored with this flag:
    as Synapse with ``enable_authenticated_media``, they serve only media stored while
    it was off."""
    return authenticated_media and authenticated


class MediaService:
    def __init__(
        self,
        db: Database,
        config: Config,
        clock: Clock,
        receiver: Receiver,
        remote: RemoteMediaSource | None = None,
        upload_filter: UploadFilterChain | None = None,
    ) -> None:
        self.db = db
        #: The features' upload filters (homeserver/extensions), asked before storing.
        self.upload_filter = upload_filter
        self.clock = clock
        self.server_name = config.server_name
        self.max_upload_bytes = config.max_upload_bytes
        #: New media is marked authenticated: the legacy endpoints will not serve it.
        self.authenticated_media = config.enable_authenticated_media
        self.root = config.media_path
        self.tmp_dir = self.root / "tmp"
        #: Writes uploads to ``tmp/`` (shared with the fetcher of other servers' media).
        self.receiver = receiver
        self._uploaded: dict[str, asyncio.Event] = {}
        self._uploading: set[str] = set()
        self._thumbnails = Thumbnails(
            ThumbnailWorkers(self.tmp_dir),
            [(s.width, s.height, s.method) for s in config.thumbnail_sizes],
            dynamic=config.dynamic_thumbnails,
        )
        #: Fetches other servers' media; without it remote media is M_NOT_FOUND.
        self.remote = remote

    def legacy_refuses(self, authenticated: bool) -> bool:
        return legacy_refuses(self.authenticated_media, authenticated)

    async def close(self) -> None:
        """Stop the thumbnail workers still running (the node is stopping)."""
        await self._thumbnails.close()

    def _is_remote(self, server_name: str) -> bool:
        return server_name != self.server_name and self.remote is not None

    # ------------------------------------------------------------ names and paths

    def mxc(self, media_id: str) -> str:
        return f"mxc://{self.server_name}/{media_id}"

    def content_path(self, media_id: str) -> Path:
        return self.root / "local_content" / media_id[0:2] / media_id[2:4] / media_id

    def thumbnail_dir(self, media_id: str) -> Path:
        return self.root / "thumbnails" / media_id[0:2] / media_id[2:4] / media_id

    def _local_id(self, server_name: str, media_id: str) -> str:
        """The media ID if it names local media that could exist; else M_NOT_FOUND."""
        if server_name != self.server_name:
            # Remote media needs federation (GET /_matrix/federation/v1/media/download).
            raise not_found("Remote media is not available from this server")
        if not MEDIA_ID_RE.fullmatch(media_id):
            raise not_found("Unknown media")
        return media_id

    # ------------------------------------------------------------ uploads

    async def upload(
        self,
        user_id: str,
        chunks: AsyncIterable[bytes],
        *,
        content_type: str | None,
        filename: str | None,
        content_length: int | None,
    ) -> str:
        """Store new content; its ``mxc://`` URI."""
        content_type, filename = _check_metadata(content_type, filename)
        self._check_length(content_length)
        media_id = _new_media_id()
        tmp, size, digest = await self.receiver.receive(chunks)
        tmp, size, digest, content_type, filename = await self._filter(
            user_id, tmp, size, digest, content_type, filename
        )
        await install(tmp, self.content_path(media_id))
        async with self.db.write() as conn:
            await store.insert_media(
                conn,
                MediaRecord(
                    media_id,
                    user_id,
                    content_type,
                    filename,
                    size,
                    digest,
                    self.clock.now_ms(),
                    self.authenticated_media,
                ),
            )
        return self.mxc(media_id)

    async def create(self, user_id: str) -> tuple[str, int]:
        """A new media ID whose content comes later: its ``mxc://`` URI and expiry (ms)."""
        now = self.clock.now_ms()
        media_id = _new_media_id()
        async with self.db.write() as conn:
            await store.delete_expired_pending(conn, user_id, now - PENDING_LIFETIME_MS)
            if await store.count_pending(conn, user_id, now - PENDING_LIFETIME_MS) >= (
                MAX_PENDING_PER_USER
            ):
                raise MatrixError(
                    429,
                    "M_LIMIT_EXCEEDED",
                    f"At most {MAX_PENDING_PER_USER} pending uploads at a time",
                    retry_after_ms=60_000,
                )
            await store.insert_pending(
                conn, media_id, user_id, now, authenticated=self.authenticated_media
            )
        return self.mxc(media_id), now + PENDING_LIFETIME_MS

    async def upload_to(
        self,
        user_id: str,
        server_name: str,
        media_id: str,
        chunks: AsyncIterable[bytes],
        *,
        content_type: str | None,
        filename: str | None,
        content_length: int | None,
    ) -> None:
        """Give content to a media ID made by :meth:`create`."""
        media_id = self._local_id(server_name, media_id)
        content_type, filename = _check_metadata(content_type, filename)
        self._check_length(content_length)
        # Claim the ID before looking at its row: a second upload of it, in flight or
        # finished, must never rename its file over the first one's.
        if media_id in self._uploading:
            raise MatrixError(409, "M_CANNOT_OVERWRITE_MEDIA", "Media is being uploaded")
        self._uploading.add(media_id)
        try:
            record = await self._record(media_id)
            if record is None or self._expired(record):
                raise not_found("Unknown media ID (or it expired)")
            if record.user_id != user_id:
                raise forbidden("This media ID was created by another user")
            if not record.pending:
                raise MatrixError(409, "M_CANNOT_OVERWRITE_MEDIA", "Media already uploaded")
            tmp, size, digest = await self.receiver.receive(chunks)
            tmp, size, digest, content_type, filename = await self._filter(
                user_id, tmp, size, digest, content_type, filename
            )
            await install(tmp, self.content_path(media_id))
            async with self.db.write() as conn:
                done = await store.complete_pending(
                    conn,
                    media_id,
                    content_type=content_type,
                    upload_name=filename,
                    size=size,
                    sha256=digest,
                    uploaded_ts=self.clock.now_ms(),
                )
            if not done:  # expired and forgotten while the content was arriving
                raise not_found("Unknown media ID (or it expired)")
        finally:
            self._uploading.discard(media_id)
        waiting = self._uploaded.pop(media_id, None)
        if waiting is not None:
            waiting.set()

    async def _filter(
        self,
        user_id: str,
        tmp: Path,
        size: int,
        digest: str,
        content_type: str,
        filename: str | None,
    ) -> tuple[Path, int, str, str, str | None]:
        """The upload as the features' filters leave it (or their refusal)."""
        if not self.upload_filter:
            return tmp, size, digest, content_type, filename
        upload = await apply_filters(
            self.upload_filter,
            Upload(user_id, tmp, content_type, filename, size, digest),
            tmp_dir=self.tmp_dir,
            quarantine_dir=self.root / "quarantine",
            max_bytes=self.max_upload_bytes,
        )
        content_type, filename = _check_metadata(upload.content_type, upload.filename)
        return upload.path, upload.size, upload.sha256, content_type, filename

    def _check_length(self, content_length: int | None) -> None:
        if content_length is not None and content_length > self.max_upload_bytes:
            raise self.receiver.too_large()

    # ------------------------------------------------------------ downloads

    async def download(
        self,
        server_name: str,
        media_id: str,
        *,
        timeout_ms: int,
        fetch_remote: bool = True,
        legacy: bool = False,
    ) -> MediaFile:
        """The stored content of local media (waiting up to ``timeout_ms`` if pending), or
        of remote media, fetched (if ``fetch_remote``) and cached; close it once sent.
        ``legacy``: asked at the frozen unauthenticated endpoints, which get M_NOT_FOUND for
        media stored while enable_authenticated_media was on."""
        if self._is_remote(server_name):
            assert self.remote is not None
            found, _ = await self.remote.fetch(
                server_name, media_id, download=fetch_remote, legacy=legacy
            )
            return found
        record = await self._uploaded_record(server_name, media_id, timeout_ms, legacy)
        path = self.content_path(record.media_id)
        if not await asyncio.to_thread(path.is_file):
            log.error("media %s is in the database but %s is missing", record.media_id, path)
            raise not_found("The content of this media is missing")
        return MediaFile(path, record.content_type, record.upload_name, record.size)

    async def thumbnail(
        self,
        server_name: str,
        media_id: str,
        *,
        width: int,
        height: int,
        method: Method,
        timeout_ms: int,
        fetch_remote: bool = True,
        legacy: bool = False,
    ) -> MediaFile:
        """A thumbnail of image media (see thumbnails.py: the best of the configured sizes,
        all made at the first request and kept); close it once sent."""
        if width < 1 or height < 1:
            raise invalid_param("width and height must be positive")
        if not self._is_remote(server_name):
            record = await self._uploaded_record(server_name, media_id, timeout_ms, legacy)
            return await self._thumbnails.thumbnail_of(
                record,
                self.content_path(record.media_id),
                self.thumbnail_dir(record.media_id),
                width,
                height,
                method,
            )
        assert self.remote is not None
        original, thumbnail_dir = await self.remote.fetch(
            server_name, media_id, download=fetch_remote, legacy=legacy
        )
        try:
            assert original.path is not None
            record = MediaRecord(media_id, "", original.content_type, None, original.size, "", 0)
            made = await self._thumbnails.thumbnail_of(
                record, original.path, thumbnail_dir, width, height, method
            )
        except BaseException:
            original.close()
            raise
        # The thumbnail (or the original itself) is sent from the leased cache.
        return replace(made, release=original.release)

    async def purge_remote_cache(self, before_ts: int) -> int:
        """Remove other servers' media not accessed since ``before_ts`` (ms); how many."""
        return await self.remote.purge(before_ts) if self.remote is not None else 0

    async def _uploaded_record(
        self, server_name: str, media_id: str, timeout_ms: int, legacy: bool = False
    ) -> MediaRecord:
        media_id = self._local_id(server_name, media_id)
        record = await self._record(media_id)
        if record is None or (record.pending and self._expired(record)):
            raise not_found("Unknown media")
        if legacy and self.legacy_refuses(record.authenticated):
            raise frozen_legacy_media()
        if not record.pending:
            return record
        # Register interest before looking again, so an upload finishing in between is seen.
        event = self._uploaded.setdefault(media_id, asyncio.Event())
        record = await self._record(media_id)
        if record is not None and record.pending and timeout_ms > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), min(timeout_ms, MAX_WAIT_MS) / 1000)
            record = await self._record(media_id)
        if record is None:
            raise not_found("Unknown media")
        if record.pending:
            raise not_yet_uploaded()
        return record

    async def _record(self, media_id: str) -> MediaRecord | None:
        async with self.db.read() as conn:
            return await store.get_media(conn, media_id)

    def _expired(self, record: MediaRecord) -> bool:
        return record.pending and record.created_ts + PENDING_LIFETIME_MS <= self.clock.now_ms()


def _new_media_id() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(MEDIA_ID_LENGTH))


def _check_metadata(content_type: str | None, filename: str | None) -> tuple[str, str | None]:
    content_type = (content_type or "").strip() or DEFAULT_CONTENT_TYPE
    if len(content_type) > 255 or not content_type.isascii() or not content_type.isprintable():
        raise invalid_param("Content-Type must be printable ASCII of at most 255 characters")
    if filename is not None and len(filename) > MAX_FILENAME_CHARS:
        raise invalid_param(f"filename must be at most {MAX_FILENAME_CHARS} characters")
    if filename is not None and ("\x00" in filename or not _is_utf8(filename)):
        raise invalid_param("filename must be valid UTF-8 without NUL characters")
    return content_type, filename or None


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
