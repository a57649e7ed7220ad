"""Server-side key backups: backup versions and the encrypted room keys in them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from homeserver.storage.schema import e2e_room_keys, e2e_room_keys_versions


@dataclass(frozen=True)
class BackupVersion:
    version: int
    algorithm: str
    auth_data: dict[str, Any]
    etag: int


@dataclass(frozen=True)
class RoomKey:
    room_id: str
    session_id: str
    first_message_index: int
    forwarded_count: int
    is_verified: bool
    session_data: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "first_message_index": self.first_message_index,
            "forwarded_count": self.forwarded_count,
            "is_verified": self.is_verified,
            "session_data": self.session_data,
        }


def _version(row: Any) -> BackupVersion:
    return BackupVersion(row.version, row.algorithm, json.loads(row.auth_data), row.etag)


async def current_version(conn: AsyncConnection, user_id: str) -> BackupVersion | None:
    v = e2e_room_keys_versions.c
    row = (
        await conn.execute(
            select(e2e_room_keys_versions)
            .where(v.user_id == user_id, ~v.deleted)
            .order_by(v.version.desc())
            .limit(1)
        )
    ).first()
    return _version(row) if row else None


async def get_version(conn: AsyncConnection, user_id: str, version: int) -> BackupVersion | None:
    v = e2e_room_keys_versions.c
    row = (
        await conn.execute(
            select(e2e_room_keys_versions).where(
                v.user_id == user_id, v.version == version, ~v.deleted
            )
        )
    ).first()
    return _version(row) if row else None


async def create_version(
    conn: AsyncConnection, user_id: str, algorithm: str, auth_data: dict[str, Any]
) -> int:
    """A new version, numbered after every earlier one (deleted ones included)."""
    v = e2e_room_keys_versions.c
    highest = (await conn.execute(select(func.max(v.version)).where(v.user_id == user_id))).scalar()
    version = int(highest or 0) + 1
    await conn.execute(
        insert(e2e_room_keys_versions).values(
            user_id=user_id,
            version=version,
            algorithm=algorithm,
            auth_data=json.dumps(auth_data, ensure_ascii=False),
            etag=0,
            deleted=False,
        )
    )
    return version


async def update_version(
    conn: AsyncConnection, user_id: str, version: int, auth_data: dict[str, Any]
) -> None:
    v = e2e_room_keys_versions.c
    await conn.execute(
        update(e2e_room_keys_versions)
        .where(v.user_id == user_id, v.version == version)
        .values(auth_data=json.dumps(auth_data, ensure_ascii=False))
    )


async def delete_version(conn: AsyncConnection, user_id: str, version: int) -> None:
    v = e2e_room_keys_versions.c
    await conn.execute(
        update(e2e_room_keys_versions)
        .where(v.user_id == user_id, v.version == version)
        .values(deleted=True)
    )
    await delete_keys(conn, user_id, version)


async def bump_etag(conn: AsyncConnection, user_id: str, version: int) -> None:
    v = e2e_room_keys_versions.c
    await conn.execute(
        update(e2e_room_keys_versions)
        .where(v.user_id == user_id, v.version == version)
        .values(etag=v.etag + 1)
    )


async def count_keys(conn: AsyncConnection, user_id: str, version: int) -> int:
    k = e2e_room_keys.c
    found = (
        await conn.execute(select(func.count()).where(k.user_id == user_id, k.version == version))
    ).scalar()
    return int(found or 0)


async def get_keys(
    conn: AsyncConnection,
    user_id: str,
    version: int,
    room_id: str | None = None,
    session_id: str | None = None,
) -> list[RoomKey]:
    k = e2e_room_keys.c
    query = select(e2e_room_keys).where(k.user_id == user_id, k.version == version)
    if room_id is not None:
        query = query.where(k.room_id == room_id)
    if session_id is not None:
        query = query.where(k.session_id == session_id)
    return [
        RoomKey(
            r.room_id,
            r.session_id,
            r.first_message_index,
            r.forwarded_count,
            r.is_verified,
            json.loads(r.session_data),
        )
        for r in await conn.execute(query.order_by(k.room_id, k.session_id))
    ]


async def put_key(conn: AsyncConnection, user_id: str, version: int, key: RoomKey) -> None:
    await delete_keys(conn, user_id, version, key.room_id, key.session_id)
    await conn.execute(
        insert(e2e_room_keys).values(
            user_id=user_id,
            version=version,
            room_id=key.room_id,
            session_id=key.session_id,
            first_message_index=key.first_message_index,
            forwarded_count=key.forwarded_count,
            is_verified=key.is_verified,
            session_data=json.dumps(key.session_data, ensure_ascii=False),
        )
    )


async def delete_keys(
    conn: AsyncConnection,
    user_id: str,
    version: int,
    room_id: str | None = None,
    session_id: str | None = None,
) -> None:
    k = e2e_room_keys.c
    query = delete(e2e_room_keys).where(k.user_id == user_id, k.version == version)
    if room_id is not None:
        query = query.where(k.room_id == room_id)
    if session_id is not None:
        query = query.where(k.session_id == session_id)
    await conn.execute(query)
