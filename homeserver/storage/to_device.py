"""The to-device inbox.

- ``to_device``: one row per message and target device, at a stream position; rows are
  deleted once the device acknowledges them with a later sync token.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from homeserver.storage.changes import recording
from homeserver.storage.schema import to_device


@dataclass(frozen=True)
class ToDeviceMessage:
    stream_id: int
    sender: str
    type: str
    content: dict[str, Any]


async def add_to_device(
    conn: AsyncConnection,
    stream_id: int,
    user_id: str,
    device_id: str,
    sender: str,
    event_type: str,
    content: dict[str, Any],
) -> None:
    recording().to_device.mark((user_id, device_id), stream_id)
    await conn.execute(
        insert(to_device).values(
            stream_id=stream_id,
            user_id=user_id,
            device_id=device_id,
            sender=sender,
            type=event_type,
            content=json.dumps(content, ensure_ascii=False, separators=(",", ":")),
        )
    )


async def to_device_messages(
    conn: AsyncConnection, user_id: str, device_id: str, upto: int
) -> list[ToDeviceMessage]:
    rows = await conn.execute(
        select(to_device.c.stream_id, to_device.c.sender, to_device.c.type, to_device.c.content)
        .where(
            to_device.c.user_id == user_id,
            to_device.c.device_id == device_id,
            to_device.c.stream_id <= upto,
        )
        .order_by(to_device.c.stream_id)
    )
    return [ToDeviceMessage(r.stream_id, r.sender, r.type, json.loads(r.content)) for r in rows]


async def delete_to_device_upto(
    conn: AsyncConnection, user_id: str, device_id: str, upto: int
) -> int:
    result = await conn.execute(
        delete(to_device).where(
            to_device.c.user_id == user_id,
            to_device.c.device_id == device_id,
            to_device.c.stream_id <= upto,
        )
    )
    return int(result.rowcount or 0)
