"""OpenID tokens (``/user/{userId}/openid/request_token``): a user proves who they are to
a third party (a widget, an integration manager), which asks this server's
``/_matrix/federation/v1/openid/userinfo``.  A token is valid for an hour, as Synapse's;
only its SHA-256 is stored; expired ones are deleted when new ones are made."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from homeserver.common.clock import Clock
from homeserver.storage import openid as store
from homeserver.storage.database import Database

EXPIRES_IN_S = 3600


def _hash(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


class OpenIdTokens:
    def __init__(self, db: Database, clock: Clock, server_name: str) -> None:
        self.db = db
        self.clock = clock
        self.server_name = server_name

    async def request_token(self, user_id: str) -> dict[str, Any]:
        token = secrets.token_urlsafe(32)
        now = self.clock.now_ms()
        async with self.db.write() as conn:
            await store.delete_expired(conn, now)
            await store.insert_token(conn, _hash(token), user_id, now + EXPIRES_IN_S * 1000)
        return {
            "access_token": token,
            "token_type": "Bearer",
            "matrix_server_name": self.server_name,
            "expires_in": EXPIRES_IN_S,
        }

    async def user_info(self, token: str) -> str | None:
        """The user a valid token names, else None."""
        if not token or len(token) > 512:
            return None
        async with self.db.read() as conn:
            return await store.user_of_token(conn, _hash(token), self.clock.now_ms())
