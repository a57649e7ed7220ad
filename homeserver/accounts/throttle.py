"""Limits on guessing passwords: per address and per account, as Synapse's ``rc_login``.

Three token buckets, each ``per_second`` sustained with bursts of ``burst_count``:

- ``address``: every ``/login`` from one IP address;
- ``failed_attempts``: wrong passwords for one account, at ``/login`` and at the password
  stage of user-interactive auth; checked before the password is hashed, spent when it is
  wrong;
- ``account``: successful logins of one account.

Over a limit the request is answered 429 ``M_LIMIT_EXCEEDED`` with ``retry_after_ms``
before any password hash is computed.
"""

from __future__ import annotations

from homeserver.common.clock import Clock
from homeserver.common.errors import limit_exceeded
from homeserver.config import LoginLimits, Rate

MAX_KEYS = 100_000


class Buckets:
    """Token buckets keyed by address or user ID."""

    def __init__(self, rate: Rate, clock: Clock) -> None:
        self.rate = rate
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}

    def _tokens(self, key: str) -> tuple[float, float]:
        now = self.clock.monotonic()
        tokens, last = self._buckets.get(key, (float(self.rate.burst_count), now))
        return min(float(self.rate.burst_count), tokens + (now - last) * self.rate.per_second), now

    def check(self, key: str, *, spend: bool = True) -> None:
        """429 when ``key`` has no token left; else spend one (unless ``spend`` is False)."""
        tokens, now = self._tokens(key)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            per_second = self.rate.per_second or 1e-9
            raise limit_exceeded(int((1.0 - tokens) / per_second * 1000) + 1)
        if spend:
            self._store(key, tokens - 1.0, now)

    def spend(self, key: str) -> None:
        """Spend a token of ``key`` (down to none) without refusing anything."""
        tokens, now = self._tokens(key)
        self._store(key, max(0.0, tokens - 1.0), now)

    def _store(self, key: str, tokens: float, now: float) -> None:
        if len(self._buckets) >= MAX_KEYS and key not in self._buckets:
            self._buckets.clear()
        self._buckets[key] = (tokens, now)


class LoginThrottle:
    def __init__(self, limits: LoginLimits, clock: Clock) -> None:
        self.address = Buckets(limits.address, clock)
        self.account = Buckets(limits.account, clock)
        self.failed = Buckets(limits.failed_attempts, clock)

    def before_login(self, ip: str | None, user_id: str) -> None:
        """At ``/login``, before the password is looked at."""
        self.address.check(f"ip:{ip}")
        self.failed.check(user_id, spend=False)

    def before_password_stage(self, user_id: str) -> None:
        """At the password stage of user-interactive auth, before the password is hashed."""
        self.failed.check(user_id, spend=False)

    def wrong_password(self, user_id: str) -> None:
        self.failed.spend(user_id)

    def logged_in(self, user_id: str) -> None:
        """After the right password: a limit on how often one account logs in."""
        self.account.check(user_id)
