"""Password hashing with argon2id (argon2-cffi), off the event loop."""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError


class Passwords:
    def __init__(self, *, fast: bool = False) -> None:
        # ``fast`` is for tests and benchmarks only: it trades strength for speed.
        self._hasher = (
            PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
            if fast
            else PasswordHasher()
        )

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, stored_hash: str | None, password: str) -> bool:
        if not stored_hash:
            return False

        def check() -> bool:
            try:
                return bool(self._hasher.verify(stored_hash, password))
            except (VerificationError, InvalidHashError):
                return False

        return await asyncio.to_thread(check)
