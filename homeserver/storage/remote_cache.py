"""Caches of other servers' data: their users' device lists and their media.

- ``remote_device_lists``: one row per remote user whose device list we follow, with the
  ``stream_id`` of the last update applied (the ``prev_id`` the next update must name).
- ``remote_media``: one row per cached remote media; the file is named by ``file_id``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, insert, select
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
        )
    )
