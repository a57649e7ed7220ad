"""Extended profile fields (every key but displayname and avatar_url, which users keeps)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from homeserver.storage.schema import profile_fields


async def get_fields(conn: AsyncConnection, user_id: str) -> dict[str, Any]:
    rows = await conn.execute(
        select(profile_fields.c.key, profile_fields.c.value)
        .where(profile_fields.c.user_id == user_id)
        .order_by(profile_fields.c.key)
    )
    return {key: json.loads(value) for key, value in rows.all()}


async def set_field(conn: AsyncConnection, user_id: str, key: str, value: Any) -> None:
    await delete_field(conn, user_id, key)
    await conn.execute(
        profile_fields.insert().values(
            user_id=user_id, key=key, value=json.dumps(value, ensure_ascii=False)
        )
    )


async def delete_field(conn: AsyncConnection, user_id: str, key: str) -> None:
    await conn.execute(
        delete(profile_fields).where(
            profile_fields.c.user_id == user_id, profile_fields.c.key == key
        )
    )
