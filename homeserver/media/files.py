"""Writing media files: durably (tmp file, fsync, rename, fsync of the directory) and
cleaning up what an interrupted write left behind."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import secrets
import time
from collections.abc import AsyncIterable
from pathlib import Path
from typing import BinaryIO

from homeserver.common.errors import MatrixError, too_large

log = logging.getLogger(__name__)

_WRITE_CHUNK = 1024 * 1024
#: Files in ``tmp/`` older than this were left by a crash (removed on the first write).
STALE_TMP_S = 3600


def remove_stale_files(directory: Path, before: float) -> None:
    """Remove files last modified before ``before`` (a time.time()) from ``directory``."""
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return
    for entry in entries:
        with contextlib.suppress(OSError):
            if entry.is_file(follow_symlinks=False) and entry.stat().st_mtime < before:
                os.unlink(entry.path)
                log.info("removed %s, left behind by an interrupted write", entry.path)


def flush_and_sync(file: BinaryIO) -> None:
    file.flush()
    os.fsync(file.fileno())


async def install(tmp: Path, final: Path) -> None:
    """Rename a complete, synced file into place (and make the rename durable)."""

    def install() -> None:
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, final)
            directory = os.open(final.parent, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise

    await asyncio.to_thread(install)


class Receiver:
    """Writes a body (an upload, or another server's media) to a new file in ``tmp/``,
    flushed and synced, for :func:`install` to rename into place; bodies over
    ``max_bytes`` are refused (M_TOO_LARGE)."""

    def __init__(self, tmp_dir: Path, max_bytes: int) -> None:
        self.tmp_dir = tmp_dir
        self.max_bytes = max_bytes
        self._tmp_checked = False

    def too_large(self) -> MatrixError:
        return too_large(f"Cannot upload files larger than {self.max_bytes} bytes")

    async def receive(self, chunks: AsyncIterable[bytes]) -> tuple[Path, int, str]:
        """Write the body to a new file in ``tmp/``: its path, size and SHA-256 (hex)."""
        if not self._tmp_checked:
            self._tmp_checked = True
            await asyncio.to_thread(remove_stale_files, self.tmp_dir, time.time() - STALE_TMP_S)
        await asyncio.to_thread(self.tmp_dir.mkdir, parents=True, exist_ok=True)
        tmp = self.tmp_dir / secrets.token_hex(16)
        file: BinaryIO = await asyncio.to_thread(open, tmp, "xb")
        try:
            size = 0
            digest = hashlib.sha256()
            buffer = bytearray()
            async for chunk in chunks:
                size += len(chunk)
                if size > self.max_bytes:
                    raise self.too_large()
                digest.update(chunk)
                buffer += chunk
                if len(buffer) >= _WRITE_CHUNK:
                    await asyncio.to_thread(file.write, bytes(buffer))
                    buffer.clear()
            if buffer:
                await asyncio.to_thread(file.write, bytes(buffer))
            await asyncio.to_thread(flush_and_sync, file)
        except BaseException:
            file.close()
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        file.close()
        return tmp, size, digest.hexdigest()
