"""Thumbnails of image media, as Synapse makes them: a fixed set of sizes per image
(``thumbnail_sizes``), each request answered with the best of them (thumbnail_sizes.py).

They are made on the first request for a thumbnail of an image, all sizes at once from
one decode in a worker process (thumbnail_worker.py), and kept next to the media's other
thumbnails as ``<w>x<h>-<method>.<jpg|png>`` (the thumbnail's own size; see service.py
for the layout); later requests are answered from those files.  Requests that arrive
while an image's thumbnails are being made wait for that one run.

With ``dynamic_thumbnails`` (off by default, as Synapse) each request gets a thumbnail of
exactly its size instead, kept under the requested size; beyond
``MAX_CACHED_THUMBNAILS`` of one media new ones are made but not kept.

An image no larger than the request, and not animated, is answered with the original
content (the spec), without making anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from homeserver.common.errors import MatrixError, not_found, too_large
from homeserver.media import thumbnail_sizes as sizes
from homeserver.media import thumbnailer
from homeserver.media.ports import MediaFile
from homeserver.media.thumbnail_sizes import Candidate, Method
from homeserver.media.thumbnail_worker import ThumbnailWorkers
from homeserver.media.thumbnailer import ImageTooLarge, Job, SourceInfo, ThumbnailError
from homeserver.storage.media import MediaRecord

log = logging.getLogger(__name__)

#: With dynamic thumbnails: beyond this many kept of one media, new sizes are not kept.
MAX_CACHED_THUMBNAILS = 32


def cannot_thumbnail(message: str) -> MatrixError:
    return MatrixError(400, "M_UNKNOWN", f"Cannot generate thumbnails for this content: {message}")


class Thumbnails:
    """Makes and keeps the thumbnails of local and cached remote media."""

    def __init__(
        self,
        workers: ThumbnailWorkers,
        thumbnail_sizes: Sequence[tuple[int, int, Method]],
        *,
        dynamic: bool = False,
    ) -> None:
        self.workers = workers
        self.sizes = tuple(thumbnail_sizes)
        self.dynamic = dynamic
        #: Runs in flight: (thumbnail directory, "*" or the one file) -> the run.
        self._making: dict[tuple[Path, str], asyncio.Task[dict[str, bytes]]] = {}
        #: Set by close(): no new run starts (a request still being answered gets 503).
        self._closed = False

    async def thumbnail_of(
        self,
        record: MediaRecord,
        source: Path,
        thumbnail_dir: Path,
        width: int,
        height: int,
        method: Method,
    ) -> MediaFile:
        content_type = record.content_type.split(";")[0].strip().lower()
        if content_type not in thumbnailer.IMAGE_FORMATS:
            raise cannot_thumbnail(f"{record.content_type} is not a supported image type")
        out_type = thumbnailer.output_type(content_type)
        extension = "jpg" if out_type == "image/jpeg" else "png"
        if not await asyncio.to_thread(source.is_file):
            log.error("media %s is in the database but %s is missing", record.media_id, source)
            raise not_found("The content of this media is missing")
        info = await self._probe(source)
        if info.width <= width and info.height <= height and not info.animated:
            # No larger than asked for: the spec says to return the original content.
            return MediaFile(source, record.content_type, None, record.size)

        if self.dynamic:
            name = f"{width}x{height}-{method}.{extension}"
            batch = {name: sizes.exact(info.width, info.height, width, height, method)}
        else:
            every = sizes.candidates(info.width, info.height, self.sizes)
            chosen = sizes.select(width, height, method, every)
            if chosen is None:
                raise not_found(f"This server makes no thumbnails with method {method!r}")
            name = chosen.file_name(extension)
            batch = {c.file_name(extension): c for c in every}
        filename = f"thumbnail.{extension}"
        kept = thumbnail_dir / name
        if not await asyncio.to_thread(kept.is_file):
            flight = (thumbnail_dir, name if self.dynamic else "*")
            unkept = await self._make(flight, source, info, batch, out_type)
            if name in unkept:
                return MediaFile(None, out_type, filename, len(unkept[name]), data=unkept[name])
        try:
            size = (await asyncio.to_thread(kept.stat)).st_size
        except OSError:  # removed since: an operator clearing thumbnails, say
            raise not_found("The thumbnail is missing; ask again") from None
        return MediaFile(kept, out_type, filename, size)

    async def close(self) -> None:
        """Stop the runs in flight and their workers (the node is stopping)."""
        self._closed = True
        runs = list(self._making.values())
        for run in runs:
            run.cancel()
        await asyncio.gather(*runs, return_exceptions=True)
        # Their done callbacks (_finished) are only scheduled yet: forget them now.
        self._making.clear()
        await self.workers.close()

    async def _probe(self, source: Path) -> SourceInfo:
        try:
            return await asyncio.to_thread(thumbnailer.probe, source, self.workers.max_pixels)
        except ImageTooLarge as e:
            raise too_large(str(e)) from None
        except ThumbnailError as e:
            raise cannot_thumbnail(str(e)) from None

    async def _make(
        self,
        flight: tuple[Path, str],
        source: Path,
        info: SourceInfo,
        batch: dict[str, Candidate],
        out_type: str,
    ) -> dict[str, bytes]:
        """Make the thumbnails of ``batch`` not kept yet, in one worker run that concurrent
        requests share (and that goes on if they go away); the bytes of any not kept."""
        run = self._making.get(flight)
        if run is None:
            if self._closed:
                # A request answered while the node stops: no run would be stopped.
                raise MatrixError(503, "M_UNKNOWN", "The server is stopping; ask again")
            run = asyncio.create_task(self._run(flight[0], source, info, batch, out_type))
            self._making[flight] = run
            run.add_done_callback(lambda done: self._finished(flight, done))
        return await asyncio.shield(run)

    def _finished(self, flight: tuple[Path, str], run: asyncio.Task[dict[str, bytes]]) -> None:
        self._making.pop(flight, None)
        if not run.cancelled():
            run.exception()  # retrieved: every requester may have gone

    async def _run(
        self,
        thumbnail_dir: Path,
        source: Path,
        info: SourceInfo,
        batch: dict[str, Candidate],
        out_type: str,
    ) -> dict[str, bytes]:
        missing = await asyncio.to_thread(
            lambda: [n for n in batch if not (thumbnail_dir / n).is_file()]
        )
        jobs = [Job(n, batch[n].width, batch[n].height, batch[n].box) for n in missing]
        try:
            out_dir = await self.workers.render(source, info, jobs, out_type)
        except ImageTooLarge as e:
            raise too_large(str(e)) from None
        except ThumbnailError as e:
            raise cannot_thumbnail(str(e)) from None
        try:
            return await asyncio.to_thread(self._keep, out_dir, thumbnail_dir, missing)
        finally:
            await asyncio.to_thread(shutil.rmtree, out_dir, True)

    def _keep(self, out_dir: Path, thumbnail_dir: Path, names: list[str]) -> dict[str, bytes]:
        """Move the worker's thumbnails into place (blocking; they are synced already);
        the bytes of those not kept.  Thumbnails are a cache: failing to keep one is
        logged, not raised."""
        unkept: dict[str, bytes] = {}
        for name in names:
            try:
                thumbnail_dir.mkdir(parents=True, exist_ok=True)
                if self.dynamic and len(os.listdir(thumbnail_dir)) >= MAX_CACHED_THUMBNAILS:
                    # Arbitrary sizes must not fill the disk.
                    unkept[name] = (out_dir / name).read_bytes()
                    continue
                os.replace(out_dir / name, thumbnail_dir / name)
            except OSError:
                log.exception("cannot keep thumbnail %s of %s", name, thumbnail_dir)
                with contextlib.suppress(OSError):
                    unkept[name] = (out_dir / name).read_bytes()
        return unkept
