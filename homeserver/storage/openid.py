"""OpenID tokens: hashed, each with the user it names and when it stops being valid."""

from __future__ import annotations

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from homeserver.storage.schema import openid_tokens


async def insert_token(
    conn: AsyncConnection, token_sha256: bytes, user_id: str, valid_until_ms: int
) -> None:
    await conn.execute(
        insert(openid_tokens).values(
            token_sha256=token_sha256, user_id=user_id, valid_until_ms=valid_until_ms
        )
    )


async def user_of_token(conn: AsyncConnection, token_sha256: bytes, now_ms: int) -> str | None:
    """The user a token was given to, while it is valid."""
    t = openid_tokens.c
    row = await conn.execute(
        select(t.user_id).where(t.token_sha256 == token_sha256, t.valid_until_ms > now_ms)
    )
    return row.scalar()


async def delete_expired(conn: AsyncConnection, now_ms: int) -> None:
    await conn.execute(delete(openid_tokens).where(openid_tokens.c.valid_until_ms <= now_ms))
