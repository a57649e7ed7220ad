"""Writing media files: durably (tmp file, fsync, rename, fsync of the directory) and
cleaning up what an interrupted write left behind."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from pathlib import Path
from typing import BinaryIO

log = logging.getLogger(__name__)


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
