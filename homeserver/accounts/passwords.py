"""Password hashing with argon2id (argon2-cffi), off the event loop, and the rules for new
passwords."""

from __future__ import annotations

import asyncio
import re
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from homeserver.common.errors import MatrixError
from homeserver.config import PasswordPolicy

#: Synapse refuses longer passwords at registration, password changes and in its admin API.
MAX_PASSWORD_LENGTH = 512

#: The character classes of Synapse's password policy (ASCII only, as there).
_RULES = (
    ("require_digit", re.compile("[0-9]"), "at least one digit"),
    ("require_symbol", re.compile("[^a-zA-Z0-9]"), "at least one symbol"),
    ("require_uppercase", re.compile("[A-Z]"), "at least one uppercase letter"),
    ("require_lowercase", re.compile("[a-z]"), "at least one lowercase letter"),
)


def check_password_length(password: str, errcode: str = "M_UNKNOWN") -> None:
    if len(password) > MAX_PASSWORD_LENGTH:
        raise MatrixError(
            400, errcode, f"Invalid password: longer than {MAX_PASSWORD_LENGTH} characters"
        )


def check_new_password(
    password: str, policy: PasswordPolicy, *, too_long_errcode: str = "M_UNKNOWN"
) -> None:
    """Refuse a new password that is too long (400 ``too_long_errcode``: Synapse answers
    M_UNKNOWN at /register and in its admin API, M_BAD_JSON at /account/password) or, when
    the policy is enabled, breaks one of its rules (400 M_WEAK_PASSWORD, as the spec says)."""
    check_password_length(password, too_long_errcode)
    if not policy.enabled:
        return
    if len(password) < policy.minimum_length:
        raise MatrixError(
            400,
            "M_WEAK_PASSWORD",
            f"The password must be at least {policy.minimum_length} characters long",
        )
    for flag, pattern, what in _RULES:
        if getattr(policy, flag) and pattern.search(password) is None:
            raise MatrixError(400, "M_WEAK_PASSWORD", f"The password must include {what}")


class Passwords:
    def __init__(self, *, fast: bool = False, hasher: PasswordHasher | None = None) -> None:
        # ``fast`` is for tests and benchmarks only: it trades strength for speed.
        self._hasher = hasher or (
            PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
            if fast
            else PasswordHasher()
        )
        #: A hash of a random password, verified when there is no hash to check against
        #: (unknown user, account without a password), so that such a login costs the same
        #: argon2 work as a wrong password and timing does not reveal which accounts exist.
        self._dummy_hash: str | None = None

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, stored_hash: str | None, password: str) -> bool:
        """Whether ``password`` matches ``stored_hash``; without a hash, always False after
        the same work as a real check."""
        if not stored_hash:
            if self._dummy_hash is None:
                self._dummy_hash = await self.hash(secrets.token_urlsafe(32))
            await asyncio.to_thread(self._check, self._dummy_hash, password)
            return False
        return await asyncio.to_thread(self._check, stored_hash, password)

    def _check(self, stored_hash: str, password: str) -> bool:
        try:
            return bool(self._hasher.verify(stored_hash, password))
        except (VerificationError, InvalidHashError):
            return False
