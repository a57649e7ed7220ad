"""Users, devices, access tokens and registration tokens."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, false, func, insert, select, true, update
from sqlalchemy.ext.asyncio import AsyncConnection

from homeserver.storage import push as push_store
from homeserver.storage.schema import (
    access_tokens,
    devices,
    refresh_tokens,
    registration_tokens,
    users,
)


@dataclass(frozen=True)
class User:
    user_id: str
    password_hash: str | None
    is_admin: bool
    deactivated: bool
    created_ts: int
    displayname: str | None
    avatar_url: str | None
    locked: bool = False
    suspended: bool = False


@dataclass(frozen=True)
class Device:
    user_id: str
    device_id: str
    display_name: str | None
    last_seen_ts: int | None
    last_seen_ip: str | None
    last_seen_user_agent: str | None = None


async def get_user(conn: AsyncConnection, user_id: str) -> User | None:
    row = (await conn.execute(select(users).where(users.c.user_id == user_id))).first()
    return User(**row._mapping) if row else None


async def list_users(conn: AsyncConnection, limit: int = 100, offset: int = 0) -> list[User]:
    rows = await conn.execute(select(users).order_by(users.c.user_id).limit(limit).offset(offset))
    return [User(**r._mapping) for r in rows]


async def list_admins(conn: AsyncConnection) -> list[str]:
    """The active server admins, the oldest account first (then by user ID)."""
    rows = await conn.execute(
        select(users.c.user_id)
        .where(users.c.is_admin == true(), users.c.deactivated == false())
        .order_by(users.c.created_ts, users.c.user_id)
    )
    return [str(r[0]) for r in rows]


async def count_users(conn: AsyncConnection) -> int:
    return int((await conn.execute(select(func.count()).select_from(users))).scalar() or 0)


async def insert_user(
    conn: AsyncConnection,
    user_id: str,
    password_hash: str | None,
    created_ts: int,
    *,
    is_admin: bool = False,
    displayname: str | None = None,
) -> None:
    await conn.execute(
        insert(users).values(
            user_id=user_id,
            password_hash=password_hash,
            is_admin=is_admin,
            deactivated=False,
            created_ts=created_ts,
            displayname=displayname,
        )
    )


async def update_user(conn: AsyncConnection, user_id: str, **values: object) -> None:
    await conn.execute(update(users).where(users.c.user_id == user_id).values(**values))


async def search_users(conn: AsyncConnection, term: str, limit: int) -> list[User]:
    """Users whose ID or display name contains ``term`` (case-insensitive substring)."""
    pattern = "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    rows = await conn.execute(
        select(users)
        .where(~users.c.deactivated)
        .where(
            func.lower(users.c.user_id).like(pattern.lower(), escape="\\")
            | func.lower(users.c.displayname).like(pattern.lower(), escape="\\")
        )
        .order_by(users.c.user_id)
        .limit(limit)
    )
    return [User(**r._mapping) for r in rows]


# ------------------------------------------------------------------ devices


async def upsert_device(
    conn: AsyncConnection,
    user_id: str,
    device_id: str,
    display_name: str | None,
    ts: int,
    ip: str | None,
    user_agent: str | None = None,
) -> None:
    existing = (
        await conn.execute(
            select(devices.c.device_id).where(
                devices.c.user_id == user_id, devices.c.device_id == device_id
            )
        )
    ).first()
    if existing:
        values: dict[str, object] = {
            "last_seen_ts": ts,
            "last_seen_ip": ip,
            "last_seen_user_agent": user_agent,
        }
        if display_name is not None:
            values["display_name"] = display_name
        await conn.execute(
            update(devices)
            .where(devices.c.user_id == user_id, devices.c.device_id == device_id)
            .values(**values)
        )
    else:
        await conn.execute(
            insert(devices).values(
                user_id=user_id,
                device_id=device_id,
                display_name=display_name,
                last_seen_ts=ts,
                last_seen_ip=ip,
                last_seen_user_agent=user_agent,
            )
        )


async def record_seen(
    conn: AsyncConnection,
    user_id: str,
    device_id: str,
    ts: int,
    ip: str | None,
    user_agent: str | None,
) -> None:
    """When, from where and with what client a device was last seen (no row: nothing)."""
    await conn.execute(
        update(devices)
        .where(devices.c.user_id == user_id, devices.c.device_id == device_id)
        .values(last_seen_ts=ts, last_seen_ip=ip, last_seen_user_agent=user_agent)
    )


async def get_devices(conn: AsyncConnection, user_id: str) -> list[Device]:
    rows = await conn.execute(
        select(devices).where(devices.c.user_id == user_id).order_by(devices.c.device_id)
    )
    return [Device(**r._mapping) for r in rows]


async def get_device(conn: AsyncConnection, user_id: str, device_id: str) -> Device | None:
    row = (
        await conn.execute(
            select(devices).where(devices.c.user_id == user_id, devices.c.device_id == device_id)
        )
    ).first()
    return Device(**row._mapping) if row else None


async def rename_device(conn: AsyncConnection, user_id: str, device_id: str, name: str) -> None:
    await conn.execute(
        update(devices)
        .where(devices.c.user_id == user_id, devices.c.device_id == device_id)
        .values(display_name=name)
    )


async def delete_device(conn: AsyncConnection, user_id: str, device_id: str) -> None:
    # Logging a device out deletes the pushers its access tokens set (Synapse does too).
    await push_store.delete_pushers_of_devices(conn, user_id, device_id)
    await conn.execute(
        delete(access_tokens).where(
            access_tokens.c.user_id == user_id, access_tokens.c.device_id == device_id
        )
    )
    await conn.execute(
        delete(refresh_tokens).where(
            refresh_tokens.c.user_id == user_id, refresh_tokens.c.device_id == device_id
        )
    )
    await conn.execute(
        delete(devices).where(devices.c.user_id == user_id, devices.c.device_id == device_id)
    )


# ------------------------------------------------------------------ access tokens


async def delete_tokens_of_user(
    conn: AsyncConnection, user_id: str, except_device: str | None = None
) -> None:
    query = delete(access_tokens).where(access_tokens.c.user_id == user_id)
    if except_device is not None:
        query = query.where(access_tokens.c.device_id != except_device)
    await conn.execute(query)
    refresh = delete(refresh_tokens).where(refresh_tokens.c.user_id == user_id)
    if except_device is not None:
        refresh = refresh.where(refresh_tokens.c.device_id != except_device)
    await conn.execute(refresh)
    await push_store.delete_pushers_of_devices(conn, user_id, except_device=except_device)


# ------------------------------------------------------------------ registration tokens


@dataclass(frozen=True)
class RegistrationToken:
    token: str
    uses_allowed: int | None
    pending: int
    completed: int
    expiry_time: int | None


async def get_registration_token(conn: AsyncConnection, token: str) -> RegistrationToken | None:
    row = (
        await conn.execute(select(registration_tokens).where(registration_tokens.c.token == token))
    ).first()
    return RegistrationToken(**row._mapping) if row else None


async def list_registration_tokens(conn: AsyncConnection) -> list[RegistrationToken]:
    rows = await conn.execute(select(registration_tokens).order_by(registration_tokens.c.token))
    return [RegistrationToken(**r._mapping) for r in rows]


async def insert_registration_token(
    conn: AsyncConnection, token: str, uses_allowed: int | None, expiry_time: int | None
) -> None:
    await conn.execute(
        insert(registration_tokens).values(
            token=token, uses_allowed=uses_allowed, pending=0, completed=0, expiry_time=expiry_time
        )
    )


async def use_registration_token(conn: AsyncConnection, token: str) -> None:
    await conn.execute(
        update(registration_tokens)
        .where(registration_tokens.c.token == token)
        .values(completed=registration_tokens.c.completed + 1)
    )


async def update_registration_token(conn: AsyncConnection, token: str, **values: object) -> None:
    """Set ``uses_allowed`` and/or ``expiry_time`` (None clears the limit)."""
    await conn.execute(
        update(registration_tokens).where(registration_tokens.c.token == token).values(**values)
    )


async def delete_registration_token(conn: AsyncConnection, token: str) -> bool:
    result = await conn.execute(
        delete(registration_tokens).where(registration_tokens.c.token == token)
    )
    return bool(result.rowcount)
