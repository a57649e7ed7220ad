"""What the media service needs from other packages, and what it hands out: a
typing.Protocol for other servers' media (the composition root, homeserver/node/wiring.py,
hands it the implementation) and the content to send."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


class RemoteMediaSource(Protocol):
    """Other servers' media, fetched over federation and cached (homeserver.federation.media)."""

    async def fetch(
        self, server_name: str, media_id: str, *, download: bool = True, legacy: bool = False
    ) -> tuple[MediaFile, Path]:
        """The cached content (fetched first if needed and ``download``; else M_NOT_FOUND)
        and the directory of its thumbnails.  The file is leased to the caller (never
        evicted) until the MediaFile is closed.  ``legacy``: for the frozen unauthenticated
        endpoints (see MediaService.download)."""
        ...

    async def purge(self, before_ts: int) -> int:
        """Remove cached media not accessed since ``before_ts`` (ms); how many."""
        ...


@dataclass(frozen=True)
class MediaFile:
    """Content to send: a file on disk (or, for an uncached thumbnail, bytes), its content
    type and the name for Content-Disposition."""

    path: Path | None
    content_type: str
    filename: str | None
    size: int
    data: bytes | None = None
    #: Ends the lease on a cached remote file (see RemoteMediaSource.fetch).
    release: Callable[[], None] | None = field(default=None, compare=False)

    def close(self) -> None:
        """The response is sent: a cached remote file may be evicted again."""
        if self.release is not None:
            self.release()
