"""Caches of other servers' data: their users' device lists and their media.

- ``remote_device_lists``: one row per remote user whose device list we follow, with the
  ``stream_id`` of the last update applied (the ``prev_id`` the next update must name).
- ``remote_media``: one row per cached remote media; the file is named by ``file_id``;
  ``last_access_ts`` orders eviction (least recently used first).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from homeserver.storage.schema import remote_device_lists, remote_media


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True)
class RemoteDeviceList:
    user_id: str
    stream_id: int
    data: dict[str, Any]


async def get_device_list(conn: AsyncConnection, user_id: str) -> RemoteDeviceList | None:
    row = (
        await conn.execute(
            select(remote_device_lists.c.stream_id, remote_device_lists.c.json).where(
                remote_device_lists.c.user_id == user_id
            )
        )
    ).first()
    if row is None:
        return None
    return RemoteDeviceList(user_id, int(row.stream_id), json.loads(row.json))


async def set_device_list(
    conn: AsyncConnection, user_id: str, stream_id: int, data: dict[str, Any], now_ms: int
) -> None:
    await delete_device_list(conn, user_id)
    await conn.execute(
        insert(remote_device_lists).values(
            user_id=user_id, stream_id=stream_id, json=_dumps(data), updated_ts=now_ms
        )
    )


async def delete_device_list(conn: AsyncConnection, user_id: str) -> None:
    await conn.execute(delete(remote_device_lists).where(remote_device_lists.c.user_id == user_id))


@dataclass(frozen=True)
class RemoteMedia:
    server_name: str
    media_id: str
    file_id: str
    content_type: str
    upload_name: str | None
    size: int
    fetched_ts: int
    last_access_ts: int
    #: Fetched while enable_authenticated_media was on (not served by the legacy endpoints).
    authenticated: bool


async def get_media(conn: AsyncConnection, server_name: str, media_id: str) -> RemoteMedia | None:
    row = (
        await conn.execute(
            select(remote_media).where(
                remote_media.c.server_name == server_name, remote_media.c.media_id == media_id
            )
        )
    ).first()
    return RemoteMedia(**row._mapping) if row else None


async def put_media(conn: AsyncConnection, record: RemoteMedia) -> None:
    await conn.execute(
        delete(remote_media).where(
            remote_media.c.server_name == record.server_name,
            remote_media.c.media_id == record.media_id,
        )
    )
    await conn.execute(
        insert(remote_media).values(
            server_name=record.server_name,
            media_id=record.media_id,
            file_id=record.file_id,
            content_type=record.content_type,
            upload_name=record.upload_name,
            size=record.size,
            fetched_ts=record.fetched_ts,
            last_access_ts=record.last_access_ts,
            authenticated=record.authenticated,
        )
    )


async def touch_media(conn: AsyncConnection, server_name: str, media_id: str, now_ms: int) -> None:
    await conn.execute(
        update(remote_media)
        .where(remote_media.c.server_name == server_name, remote_media.c.media_id == media_id)
        .values(last_access_ts=now_ms)
    )


async def total_size(conn: AsyncConnection) -> int:
    query = select(func.coalesce(func.sum(remote_media.c.size), 0))
    return int((await conn.execute(query)).scalar() or 0)


#: A position in eviction order: (last_access_ts, server_name, media_id).
Position = tuple[int, str, str]


async def least_recently_used(
    conn: AsyncConnection,
    *,
    after: Position | None = None,
    accessed_before: int | None = None,
    limit: int = 500,
) -> list[RemoteMedia]:
    """Cached media in eviction order (least recently used first), from after ``after``;
    with ``accessed_before``, only media not accessed since then."""
    order = (remote_media.c.last_access_ts, remote_media.c.server_name, remote_media.c.media_id)
    query = select(remote_media).order_by(*order).limit(limit)
    if after is not None:
        # Spelled out rather than a row-value comparison, which SQLite and PostgreSQL both
        # have but SQLAlchemy renders differently for each.
        ts, server_name, media_id = after
        query = query.where(
            or_(
                remote_media.c.last_access_ts > ts,
                (remote_media.c.last_access_ts == ts) & (remote_media.c.server_name > server_name),
                (remote_media.c.last_access_ts == ts)
                & (remote_media.c.server_name == server_name)
                & (remote_media.c.media_id > media_id),
            )
        )
    if accessed_before is not None:
        query = query.where(remote_media.c.last_access_ts < accessed_before)
    return [RemoteMedia(**row._mapping) for row in await conn.execute(query)]


async def delete_media(
    conn: AsyncConnection, server_name: str, media_id: str, file_id: str
) -> bool:
    """Forget a cached media if it is still that file; whether it was."""
    result = await conn.execute(
        delete(remote_media).where(
            remote_media.c.server_name == server_name,
            remote_media.c.media_id == media_id,
            remote_media.c.file_id == file_id,
        )
    )
    return bool(result.rowcount)
