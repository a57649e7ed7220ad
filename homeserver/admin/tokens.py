"""Registration tokens, for the ``kairan`` command and the admin HTTP API."""

from __future__ import annotations

import secrets
import string
from typing import Any

from homeserver.common.clock import Clock
from homeserver.common.errors import MatrixError, not_found
from homeserver.storage import accounts as account_store
from homeserver.storage.database import Database

TOKEN_CHARS = string.ascii_letters + string.digits + "._~-"
MAX_TOKEN_LENGTH = 64


def token_json(token: account_store.RegistrationToken) -> dict[str, Any]:
    return {
        "token": token.token,
        "uses_allowed": token.uses_allowed,
        "pending": token.pending,
        "completed": token.completed,
        "expiry_time": token.expiry_time,
    }


def _token_valid(token: account_store.RegistrationToken, now_ms: int) -> bool:
    return (token.uses_allowed is None or token.completed < token.uses_allowed) and (
        token.expiry_time is None or token.expiry_time >= now_ms
    )


_UNCHANGED: Any = object()


class RegistrationTokens:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    def _check_limits(self, uses_allowed: int | None, expiry_time: int | None) -> None:
        # The columns are a 32-bit and a 64-bit integer.
        if uses_allowed is not None and not 0 <= uses_allowed < 2**31:
            raise MatrixError(400, "M_INVALID_PARAM", "uses_allowed must be between 0 and 2^31-1")
        if expiry_time is not None and expiry_time < self.clock.now_ms():
            raise MatrixError(400, "M_INVALID_PARAM", "expiry_time must not be in the past")
        if expiry_time is not None and expiry_time >= 2**63:
            raise MatrixError(400, "M_INVALID_PARAM", "expiry_time must be below 2^63")

    async def list_registration_tokens(self, valid: bool | None = None) -> list[dict[str, Any]]:
        async with self.db.read() as conn:
            tokens = await account_store.list_registration_tokens(conn)
        now = self.clock.now_ms()
        return [token_json(t) for t in tokens if valid is None or _token_valid(t, now) == valid]

    async def get_registration_token(self, token: str) -> dict[str, Any]:
        async with self.db.read() as conn:
            found = await account_store.get_registration_token(conn, token)
        if found is None:
            raise not_found(f"No such registration token: {token}")
        return token_json(found)

    async def create_registration_token(
        self,
        token: str | None = None,
        *,
        uses_allowed: int | None = None,
        expiry_time: int | None = None,
        length: int = 16,
    ) -> dict[str, Any]:
        """A new token (random of ``length`` characters unless given)."""
        self._check_limits(uses_allowed, expiry_time)
        if token is None:
            if not 0 < length <= MAX_TOKEN_LENGTH:
                raise MatrixError(
                    400, "M_INVALID_PARAM", f"length must be between 1 and {MAX_TOKEN_LENGTH}"
                )
            token = "".join(secrets.choice(TOKEN_CHARS) for _ in range(length))
        elif not token or len(token) > MAX_TOKEN_LENGTH or any(c not in TOKEN_CHARS for c in token):
            raise MatrixError(
                400,
                "M_INVALID_PARAM",
                f"token must be 1-{MAX_TOKEN_LENGTH} characters of A-Z, a-z, 0-9, '.', '_', '~', '-'",
            )
        async with self.db.write() as conn:
            if await account_store.get_registration_token(conn, token) is not None:
                raise MatrixError(400, "M_INVALID_PARAM", f"Token already exists: {token}")
            await account_store.insert_registration_token(conn, token, uses_allowed, expiry_time)
        return await self.get_registration_token(token)

    async def update_registration_token(
        self,
        token: str,
        *,
        uses_allowed: int | None = _UNCHANGED,
        expiry_time: int | None = _UNCHANGED,
    ) -> dict[str, Any]:
        """Change a token's limits; a limit passed as None is removed, one not passed is kept."""
        values: dict[str, object] = {}
        if uses_allowed is not _UNCHANGED:
            self._check_limits(uses_allowed, None)
            values["uses_allowed"] = uses_allowed
        if expiry_time is not _UNCHANGED:
            self._check_limits(None, expiry_time)
            values["expiry_time"] = expiry_time
        async with self.db.write() as conn:
            if await account_store.get_registration_token(conn, token) is None:
                raise not_found(f"No such registration token: {token}")
            if values:
                await account_store.update_registration_token(conn, token, **values)
        return await self.get_registration_token(token)

    async def delete_registration_token(self, token: str) -> None:
        async with self.db.write() as conn:
            if not await account_store.delete_registration_token(conn, token):
                raise not_found(f"No such registration token: {token}")
