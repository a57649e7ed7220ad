"""Expiring access tokens with refresh tokens (Matrix 1.3), and one-use login tokens.

As Synapse: a client that asks for a refresh token gets an access token that lives
``refreshable_access_token_lifetime`` (5 minutes by default) and a refresh token; ``/refresh``
gives a new pair, and the old refresh token stays usable until the new access token is used
or the new refresh token is refreshed in turn.  Clients that do not ask get access tokens
that never expire.  Every token is stored as its SHA-256 hash.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from homeserver.accounts.throttle import Buckets
from homeserver.common.clock import Clock
from homeserver.common.errors import MatrixError, unknown_token
from homeserver.config import Rate, Sessions
from homeserver.storage import sessions as store
from homeserver.storage.database import Database


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def new_token(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class IssuedTokens:
    access_token: str
    device_id: str
    refresh_token: str | None = None
    #: The access token's lifetime; None: it does not expire.
    expires_in_ms: int | None = None

    def as_json(self) -> dict[str, object]:
        body: dict[str, object] = {"access_token": self.access_token}
        if self.refresh_token is not None:
            body["refresh_token"] = self.refresh_token
        if self.expires_in_ms is not None:
            body["expires_in_ms"] = self.expires_in_ms
        return body


class SessionTokens:
    def __init__(self, db: Database, clock: Clock, settings: Sessions) -> None:
        self.db = db
        self.clock = clock
        self.settings = settings
        #: ``/login/get_token``: one token a minute per user (Synapse's limit).
        self._login_token_limit = Buckets(Rate(1 / 60, 1), clock)

    def new(
        self, user_id: str, device_id: str, *, refreshable: bool
    ) -> tuple[IssuedTokens, store.NewTokens]:
        """A new access token (and with ``refreshable`` a refresh token) for a device, and
        what to store of them (:func:`homeserver.storage.sessions.insert_tokens`)."""
        now = self.clock.now_ms()
        access = new_token("kai_")
        if not refreshable:
            return IssuedTokens(access, device_id), store.NewTokens(
                token_hash(access), user_id, device_id, now
            )
        refresh = new_token("kair_")
        lifetime = self.settings.refresh_token_lifetime_ms
        expires_in = self.settings.refreshable_access_token_lifetime_ms
        row = store.NewTokens(
            token_hash(access), user_id, device_id, now,
            valid_until_ms=now + expires_in,
            refresh_sha256=token_hash(refresh),
            refresh_expiry_ts=None if lifetime is None else now + lifetime,
        )  # fmt: skip
        return IssuedTokens(access, device_id, refresh, expires_in), row

    async def refresh(self, refresh_token: str) -> tuple[str, IssuedTokens]:
        """The user and the new tokens for ``refresh_token``; 401 ``M_UNKNOWN_TOKEN`` (with
        ``soft_logout``, as the spec's example) for an unknown, revoked or expired one."""
        old = token_hash(refresh_token)
        async with self.db.write() as conn:
            found = await store.lookup_refresh_token(conn, old)
            if found is None:
                raise unknown_token("Unknown refresh token", soft_logout=True)
            if found.superseded:
                raise unknown_token("The refresh token has already been used", soft_logout=True)
            if found.expiry_ts is not None and found.expiry_ts < self.clock.now_ms():
                raise unknown_token("The refresh token has expired", soft_logout=True)
            issued, row = self.new(found.user_id, found.device_id, refreshable=True)
            await store.insert_tokens(conn, row)
            assert row.refresh_sha256 is not None
            await store.replace_refresh_token(conn, old, row.refresh_sha256)
        return found.user_id, issued

    # ------------------------------------------------------------- login tokens

    async def new_login_token(self, user_id: str) -> tuple[str, int]:
        """A one-use ``m.login.token`` token for ``user_id`` and its lifetime (429 for a
        second one within a minute)."""
        self._login_token_limit.check(user_id)
        token = new_token("kail_")
        lifetime = self.settings.login_token_timeout_ms
        async with self.db.write() as conn:
            await store.insert_login_token(
                conn, token_hash(token), user_id, self.clock.now_ms() + lifetime
            )
        return token, lifetime

    async def take_login_token(self, token: str) -> str:
        """The user a login token was made for; it cannot be used again.  403 ``M_FORBIDDEN``
        for an unknown, used or expired token (Synapse's answer)."""
        async with self.db.write() as conn:
            user_id = await store.take_login_token(conn, token_hash(token), self.clock.now_ms())
        if user_id is None:
            raise MatrixError(403, "M_FORBIDDEN", "Invalid login token")
        return user_id
