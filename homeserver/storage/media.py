"""The ``media`` table: one row per local media ID.

A row is either *uploaded* (its file is on disk, ``sha256`` is the hex digest of the
content) or *pending*: created with ``POST /_matrix/media/v1/create`` and waiting for its
content.  A pending row has ``sha256 == PENDING`` (the empty string, never a valid digest)
and ``size == 0``; its ``created_ts`` is the creation time, from which it expires.  When the
content arrives, the row is completed in place and ``created_ts`` becomes the upload time.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from homeserver.storage.schema import media

#: The ``sha256`` of a row whose content has not been uploaded yet.
PENDING = ""
PENDING_CONTENT_TYPE = "application/octet-stream"


@dataclass(frozen=True)
class MediaRecord:
    media_id: str
    user_id: str
    content_type: str
    upload_name: str | None
    size: int
    sha256: str
    created_ts: int
    #: Stored while enable_authenticated_media was on (not served by the legacy endpoints).
    authenticated: bool = False

    @property
    def pending(self) -> bool:
        return self.sha256 == PENDING


async def get_media(conn: AsyncConnection, media_id: str) -> MediaRecord | None:
    row = (await conn.execute(select(media).where(media.c.media_id == media_id))).first()
    return MediaRecord(**row._mapping) if row else None


async def insert_media(conn: AsyncConnection, record: MediaRecord) -> None:
    await conn.execute(
        insert(media).values(
            media_id=record.media_id,
            user_id=record.user_id,
            content_type=record.content_type,
            upload_name=record.upload_name,
            size=record.size,
            sha256=record.sha256,
            created_ts=record.created_ts,
            authenticated=record.authenticated,
        )
    )


async def insert_pending(
    conn: AsyncConnection, media_id: str, user_id: str, created_ts: int, *, authenticated: bool
) -> None:
    await insert_media(
        conn,
        MediaRecord(
            media_id, user_id, PENDING_CONTENT_TYPE, None, 0, PENDING, created_ts, authenticated
        ),
    )


async def complete_pending(
    conn: AsyncConnection,
    media_id: str,
    *,
    content_type: str,
    upload_name: str | None,
    size: int,
    sha256: str,
    uploaded_ts: int,
) -> bool:
    """Give a pending row its content; False if it is no longer pending (or gone)."""
    result = await conn.execute(
        update(media)
        .where(media.c.media_id == media_id, media.c.sha256 == PENDING)
        .values(
            content_type=content_type,
            upload_name=upload_name,
            size=size,
            sha256=sha256,
            created_ts=uploaded_ts,
        )
    )
    return bool(result.rowcount)


async def count_pending(conn: AsyncConnection, user_id: str, created_after: int) -> int:
    """How many unexpired pending uploads ``user_id`` has."""
    query = (
        select(func.count())
        .select_from(media)
        .where(
            media.c.user_id == user_id,
            media.c.sha256 == PENDING,
            media.c.created_ts > created_after,
        )
    )
    return int((await conn.execute(query)).scalar() or 0)


async def delete_expired_pending(conn: AsyncConnection, user_id: str, created_before: int) -> int:
    """Forget ``user_id``'s pending uploads created at or before ``created_before``."""
    result = await conn.execute(
        delete(media).where(
            media.c.user_id == user_id,
            media.c.sha256 == PENDING,
            media.c.created_ts <= created_before,
        )
    )
    return int(result.rowcount or 0)
