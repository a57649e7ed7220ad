"""Thumbnails of image media: generated on first request, a few at a time (each can hold a
decoded image in memory), and cached next to the media's other thumbnails (as
``<w>x<h>-<method>.<jpg|png>``; see service.py for the layout)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
from pathlib import Path

from homeserver.common.errors import MatrixError, not_found, too_large
from homeserver.media import thumbnailer
from homeserver.media.files import flush_and_sync
from homeserver.media.ports import MediaFile
from homeserver.media.thumbnailer import Method, ThumbnailError
from homeserver.storage.media import MediaRecord

log = logging.getLogger(__name__)

#: Thumbnails generated at once (each can hold a decoded image in memory).
THUMBNAIL_CONCURRENCY = 2
#: Beyond this many cached thumbnails of one media, new sizes are generated but not kept.
MAX_CACHED_THUMBNAILS = 32


def cannot_thumbnail(message: str) -> MatrixError:
    return MatrixError(400, "M_UNKNOWN", f"Cannot generate thumbnails for this content: {message}")


class Thumbnails:
    """Makes and caches the thumbnails of local and cached remote media."""

    def __init__(self, tmp_dir: Path) -> None:
        #: Where cached thumbnails are written before they are renamed into place.
        self.tmp_dir = tmp_dir
        self._slots = asyncio.Semaphore(THUMBNAIL_CONCURRENCY)

    async def thumbnail_of(
        self,
        record: MediaRecord,
        source: Path,
        thumbnail_dir: Path,
        width: int,
        height: int,
        method: Method,
    ) -> MediaFile:
        if record.content_type.split(";")[0].strip().lower() not in thumbnailer.IMAGE_FORMATS:
            raise cannot_thumbnail(f"{record.content_type} is not a supported image type")
        out_type = thumbnailer.output_type(record.content_type.split(";")[0].strip().lower())
        extension = "jpg" if out_type == "image/jpeg" else "png"
        cached = thumbnail_dir / f"{width}x{height}-{method}.{extension}"
        if await asyncio.to_thread(cached.is_file):
            size = (await asyncio.to_thread(cached.stat)).st_size
            return MediaFile(cached, out_type, f"thumbnail.{extension}", size)
        if not await asyncio.to_thread(source.is_file):
            log.error("media %s is in the database but %s is missing", record.media_id, source)
            raise not_found("The content of this media is missing")
        async with self._slots:
            try:
                made = await asyncio.to_thread(
                    thumbnailer.make_thumbnail, source, width, height, method, out_type
                )
            except thumbnailer.ImageTooLarge as e:
                raise too_large(str(e)) from None
            except ThumbnailError as e:
                raise cannot_thumbnail(str(e)) from None
        if made.data is None:
            return MediaFile(source, record.content_type, None, record.size)
        name = f"thumbnail.{extension}"
        if await asyncio.to_thread(self._store, cached, made.data):
            return MediaFile(cached, out_type, name, len(made.data))
        return MediaFile(None, out_type, name, len(made.data), data=made.data)

    def _store(self, path: Path, data: bytes) -> bool:
        """Cache a thumbnail (blocking); False if it was not kept.

        A media with many cached sizes already gets no more: arbitrary sizes must not fill
        the disk.  A thumbnail is a cache, so failing to keep one is logged, not raised.
        """
        tmp = self.tmp_dir / secrets.token_hex(16)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if len(os.listdir(path.parent)) >= MAX_CACHED_THUMBNAILS:
                return False
            self.tmp_dir.mkdir(parents=True, exist_ok=True)
            with open(tmp, "xb") as file:
                file.write(data)
                flush_and_sync(file)
            os.replace(tmp, path)
            return True
        except OSError:
            log.exception("cannot cache thumbnail %s", path)
            with contextlib.suppress(OSError):
                tmp.unlink()
            return False
