"""The content repository (media): uploads, downloads and thumbnails."""

from __future__ import annotations

from homeserver.media.ports import MediaFile
from homeserver.media.service import MediaService

__all__ = ["MediaFile", "MediaService"]
