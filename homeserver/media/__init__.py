"""The content repository (media): uploads, downloads and thumbnails."""

from __future__ import annotations

from homeserver.media.service import MediaFile, MediaService

__all__ = ["MediaFile", "MediaService"]
