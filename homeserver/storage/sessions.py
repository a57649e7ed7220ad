"""Refresh tokens, expiring access tokens and one-use login tokens (all stored hashed)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from homeserver.storage.schema import access_tokens, login_tokens, refresh_tokens


@dataclass(frozen=True)
class AccessToken:
    user_id: str
    device_id: str
    #: When it expires (ms since the epoch); None: never.
    valid_until_ms: int | None
    refresh_token_sha256: bytes | None
    used: bool


@dataclass(frozen=True)
class RefreshToken:
    user_id: str
    device_id: str
    expiry_ts: int | None
    next_token_sha256: bytes | None
    #: The next refresh token was refreshed in turn, or its access token was used: this one
    #: is revoked.
    superseded: bool


@dataclass(frozen=True)
class NewTokens:
    """An access token to store, with its refresh token (if any)."""

    access_sha256: bytes
    user_id: str
    device_id: str
    ts: int
    valid_until_ms: int | None = None
    refresh_sha256: bytes | None = None
    refresh_expiry_ts: int | None = None


async def insert_tokens(conn: AsyncConnection, new: NewTokens) -> None:
    if new.refresh_sha256 is not None:
        await insert_refresh_token(
            conn, new.refresh_sha256, new.user_id, new.device_id, new.ts, new.refresh_expiry_ts
        )
    await insert_access_token(
        conn, new.access_sha256, new.user_id, new.device_id, new.ts,
        valid_until_ms=new.valid_until_ms, refresh_token_sha256=new.refresh_sha256,
    )  # fmt: skip


async def insert_access_token(
    conn: AsyncConnection,
    token_sha256: bytes,
    user_id: str,
    device_id: str,
    ts: int,
    *,
    valid_until_ms: int | None,
    refresh_token_sha256: bytes | None,
) -> None:
    await conn.execute(
        insert(access_tokens).values(
            token_sha256=token_sha256,
            user_id=user_id,
            device_id=device_id,
            created_ts=ts,
            valid_until_ms=valid_until_ms,
            refresh_token_sha256=refresh_token_sha256,
            used=False,
        )
    )


async def lookup_access_token(conn: AsyncConnection, token_sha256: bytes) -> AccessToken | None:
    t = access_tokens.c
    row = (
        await conn.execute(
            select(t.user_id, t.device_id, t.valid_until_ms, t.refresh_token_sha256, t.used).where(
                t.token_sha256 == token_sha256
            )
        )
    ).first()
    return AccessToken(**row._mapping) if row else None


async def mark_access_token_used(conn: AsyncConnection, token_sha256: bytes) -> None:
    await conn.execute(
        update(access_tokens).where(access_tokens.c.token_sha256 == token_sha256).values(used=True)
    )


async def insert_refresh_token(
    conn: AsyncConnection,
    token_sha256: bytes,
    user_id: str,
    device_id: str,
    ts: int,
    expiry_ts: int | None,
) -> None:
    await conn.execute(
        insert(refresh_tokens).values(
            token_sha256=token_sha256,
            user_id=user_id,
            device_id=device_id,
            created_ts=ts,
            expiry_ts=expiry_ts,
            next_token_sha256=None,
        )
    )


async def lookup_refresh_token(conn: AsyncConnection, token_sha256: bytes) -> RefreshToken | None:
    r = refresh_tokens.c
    row = (await conn.execute(select(refresh_tokens).where(r.token_sha256 == token_sha256))).first()
    if row is None:
        return None
    superseded = False
    if row.next_token_sha256 is not None:
        refreshed = (
            await conn.execute(
                select(r.next_token_sha256).where(r.token_sha256 == row.next_token_sha256)
            )
        ).first()
        used = (
            await conn.execute(
                select(access_tokens.c.used).where(
                    access_tokens.c.refresh_token_sha256 == row.next_token_sha256,
                    access_tokens.c.used.is_(True),
                )
            )
        ).first()
        superseded = (refreshed is not None and refreshed[0] is not None) or used is not None
    return RefreshToken(
        row.user_id, row.device_id, row.expiry_ts, row.next_token_sha256, superseded
    )


async def delete_refresh_token(conn: AsyncConnection, token_sha256: bytes) -> None:
    """A refresh token and the access tokens issued with it."""
    await conn.execute(
        delete(access_tokens).where(access_tokens.c.refresh_token_sha256 == token_sha256)
    )
    await conn.execute(delete(refresh_tokens).where(refresh_tokens.c.token_sha256 == token_sha256))


async def replace_refresh_token(conn: AsyncConnection, old: bytes, new: bytes) -> None:
    """``old`` was used to get ``new``.  An earlier replacement of ``old`` (never used) goes,
    and so does the token ``old`` replaced: with ``old`` refreshed it can never be used again."""
    r = refresh_tokens.c
    row = (await conn.execute(select(r.next_token_sha256).where(r.token_sha256 == old))).first()
    if row is not None and row[0] is not None:
        await delete_refresh_token(conn, row[0])
    for (older,) in (
        await conn.execute(select(r.token_sha256).where(r.next_token_sha256 == old))
    ).all():
        await delete_refresh_token(conn, older)
    await conn.execute(
        update(refresh_tokens).where(r.token_sha256 == old).values(next_token_sha256=new)
    )


async def delete_refresh_tokens(
    conn: AsyncConnection,
    user_id: str,
    device_id: str | None = None,
    *,
    except_device: str | None = None,
) -> None:
    """The refresh tokens of a user's device (every device without ``device_id``; but
    ``except_device``)."""
    query = delete(refresh_tokens).where(refresh_tokens.c.user_id == user_id)
    if device_id is not None:
        query = query.where(refresh_tokens.c.device_id == device_id)
    if except_device is not None:
        query = query.where(refresh_tokens.c.device_id != except_device)
    await conn.execute(query)


# ------------------------------------------------------------------ login tokens


async def insert_login_token(
    conn: AsyncConnection, token_sha256: bytes, user_id: str, expiry_ts: int
) -> None:
    await conn.execute(
        insert(login_tokens).values(token_sha256=token_sha256, user_id=user_id, expiry_ts=expiry_ts)
    )


async def take_login_token(conn: AsyncConnection, token_sha256: bytes, now_ms: int) -> str | None:
    """The user of an unexpired login token, which is deleted (usable once); expired ones go."""
    await conn.execute(delete(login_tokens).where(login_tokens.c.expiry_ts < now_ms))
    row = (
        await conn.execute(
            select(login_tokens.c.user_id).where(login_tokens.c.token_sha256 == token_sha256)
        )
    ).first()
    if row is None:
        return None
    result = await conn.execute(
        delete(login_tokens).where(login_tokens.c.token_sha256 == token_sha256)
    )
    return str(row[0]) if result.rowcount == 1 else None
