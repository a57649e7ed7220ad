"""The upload filter port: what the media service asks about each upload before it is
stored.  Features implement it (file sanitising, re-encoding images, malware checks)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
import shutil
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from homeserver.common.errors import forbidden, too_large

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Upload:
    """Content received for a local upload, in a file of its own, not yet stored."""

    user_id: str
    path: Path
    content_type: str
    filename: str | None
    size: int
    sha256: str


@dataclass(frozen=True)
class UploadDecision:
    """What an :class:`UploadFilter` decided; make one with the class methods."""

    action: str  # "accept", "replace" or "quarantine"
    path: Path | None = None
    content_type: str | None = None
    filename: str | None = None
    reason: str = ""

    @classmethod
    def accept(cls) -> UploadDecision:
        return cls("accept")

    @classmethod
    def replace(
        cls, path: Path, content_type: str | None = None, filename: str | None = None
    ) -> UploadDecision:
        """Store the file at ``path`` instead (e.g. re-encoded): the filter wrote it, the
        media service takes it over.  ``None`` keeps the upload's content type or name."""
        return cls("replace", path=path, content_type=content_type, filename=filename)

    @classmethod
    def quarantine(cls, reason: str) -> UploadDecision:
        """Keep the content for the administrators (``media/quarantine/``) but never store
        or serve it; the uploader gets 403 ``M_FORBIDDEN`` with ``reason``."""
        return cls("quarantine", reason=reason)


class UploadFilter(Protocol):
    async def check_upload(self, upload: Upload) -> UploadDecision: ...


class UploadFilterChain:
    """Filters asked in order: each sees what the one before it let through (a replaced
    file is the next filter's upload); a quarantine ends the chain."""

    def __init__(self, filters: Sequence[UploadFilter] = ()) -> None:
        self.filters = tuple(filters)

    def __bool__(self) -> bool:
        return bool(self.filters)

    async def run(
        self, upload: Upload, describe: Callable[[Upload, UploadDecision], Awaitable[Upload]]
    ) -> tuple[Upload, str | None]:
        """The upload as the filters leave it, and the quarantine reason if one refused it.
        ``describe`` turns a replacement into the next :class:`Upload` (its size and hash)."""
        for upload_filter in self.filters:
            decision = await upload_filter.check_upload(upload)
            if decision.action == "quarantine":
                return upload, decision.reason or "refused by the upload filter"
            if decision.action == "replace" and decision.path is not None:
                upload = await describe(upload, decision)
        return upload, None


async def apply_filters(
    chain: UploadFilterChain, upload: Upload, *, tmp_dir: Path, quarantine_dir: Path, max_bytes: int
) -> Upload:
    """Run ``chain`` over a received upload: the upload to store (its file in ``tmp_dir``),
    or 403 ``M_FORBIDDEN`` once its content is moved to ``quarantine_dir``.  Whatever
    happens, no file but the returned one is left in ``tmp_dir``."""

    async def describe(current: Upload, decision: UploadDecision) -> Upload:
        assert decision.path is not None
        taken = tmp_dir / ("filtered-" + secrets.token_hex(16))
        await asyncio.to_thread(shutil.move, decision.path, taken)
        size, digest = await asyncio.to_thread(_size_and_hash, taken)
        if current.path != upload.path:
            await asyncio.to_thread(current.path.unlink, True)
        if size > max_bytes:
            await asyncio.to_thread(taken.unlink, True)
            raise too_large(f"The filtered upload is larger than {max_bytes} bytes")
        return Upload(
            current.user_id, taken, decision.content_type or current.content_type,
            decision.filename or current.filename, size, digest,
        )  # fmt: skip

    try:
        result, reason = await chain.run(upload, describe)
    except BaseException:
        await asyncio.to_thread(upload.path.unlink, True)
        raise
    if result.path != upload.path:
        await asyncio.to_thread(upload.path.unlink, True)
    if reason is None:
        return result
    await asyncio.to_thread(_quarantine, result, reason, quarantine_dir)
    log.warning("upload by %s quarantined: %s", result.user_id, reason)
    raise forbidden(reason)


def _size_and_hash(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as file:
        while block := file.read(1 << 20):
            size += len(block)
            digest.update(block)
    return size, digest.hexdigest()


def _quarantine(upload: Upload, reason: str, quarantine_dir: Path) -> None:
    """Keep refused content and why, for the administrators."""
    quarantine_dir.mkdir(parents=True, exist_ok=True)
    name = f"{int(time.time())}-{upload.sha256[:16]}"
    shutil.move(upload.path, quarantine_dir / name)
    record = {
        "user_id": upload.user_id, "content_type": upload.content_type,
        "filename": upload.filename, "size": upload.size, "sha256": upload.sha256,
        "reason": reason, "ts": int(time.time() * 1000),
    }  # fmt: skip
    (quarantine_dir / f"{name}.json").write_text(json.dumps(record, ensure_ascii=False))
