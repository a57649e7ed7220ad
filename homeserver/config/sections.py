"""The sections of ``kairan.yaml`` and the values in them (sizes, durations, rates...), each
read into its dataclass of :mod:`.model` and checked; every problem a one-line
:class:`ConfigError`.  :mod:`.load` reads the file and its top level with these."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from pathlib import Path
from typing import Any

from homeserver.config.listeners import Listener
from homeserver.config.model import (
    DEFAULT_THUMBNAIL_SIZES,
    ConfigError,
    FederationSettings,
    LoginLimits,
    Metrics,
    PasswordPolicy,
    PresenceSettings,
    PushSettings,
    Rate,
    RateLimit,
    RemoteMediaCache,
    Sessions,
    SupportContact,
    ThumbnailSize,
    TurnSettings,
    UrlPreviewSettings,
    WellKnown,
)

_SIZE_SUFFIXES = {"K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
_DURATION_UNITS_MS = {
    "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000,
    "y": 31_536_000_000,
}  # fmt: skip


def size(value: Any, name: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    if isinstance(value, str) and value[:-1].isdigit() and value[-1:].upper() in _SIZE_SUFFIXES:
        return int(value[:-1]) * _SIZE_SUFFIXES[value[-1].upper()]
    raise ConfigError(f"{name} must be a size such as 50M, got {value!r}")


def duration_ms(value: Any, name: str) -> int:
    """Milliseconds (an integer) or a number with a unit, as Synapse: 30s, 10m, 12h, 90d, 2w,
    1y."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    if (
        isinstance(value, str)
        and value[:-1].isascii()
        and value[:-1].isdigit()
        and int(value[:-1]) > 0
        and value[-1:] in _DURATION_UNITS_MS
    ):
        return int(value[:-1]) * _DURATION_UNITS_MS[value[-1]]
    raise ConfigError(f"{name} must be a duration such as 90d or 12h, got {value!r}")


def expect(value: Any, kind: type | tuple[type, ...], name: str) -> Any:
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise ConfigError(f"{name} must be {names}, got {value!r}")
    return value


def sessions(raw: dict[str, Any]) -> Sessions:
    existing = section(
        raw.get("login_via_existing_session") or {},
        "login_via_existing_session",
        {"enabled", "require_ui_auth", "token_timeout"},
    )
    refresh = raw.get("refresh_token_lifetime")
    return Sessions(
        refreshable_access_token_lifetime_ms=duration_ms(
            raw.get("refreshable_access_token_lifetime", "5m"), "refreshable_access_token_lifetime"
        ),
        refresh_token_lifetime_ms=(
            None if refresh is None else duration_ms(refresh, "refresh_token_lifetime")
        ),
        login_token_enabled=expect(
            existing.get("enabled", False), bool, "login_via_existing_session.enabled"
        ),
        login_token_require_ui_auth=expect(
            existing.get("require_ui_auth", True),
            bool,
            "login_via_existing_session.require_ui_auth",
        ),
        login_token_timeout_ms=duration_ms(
            existing.get("token_timeout", "5m"), "login_via_existing_session.token_timeout"
        ),
    )


def well_known(raw: Any) -> WellKnown:
    raw = section(raw, "well_known", {"server", "support"})
    server = raw.get("server")
    if server is not None:
        expect(server, str, "well_known.server")
    support = raw.get("support") or {}
    expect(support, dict, "well_known.support")
    if sorted(set(support) - {"contacts", "support_page"}):
        raise ConfigError("well_known.support may have only contacts and support_page")
    page = support.get("support_page")
    if page is not None:
        expect(page, str, "well_known.support.support_page")
    contacts = support.get("contacts") or []
    expect(contacts, list, "well_known.support.contacts")
    parsed = []
    for i, c in enumerate(contacts):
        name = f"well_known.support.contacts[{i}]"
        expect(c, dict, name)
        if sorted(set(c) - {"role", "matrix_id", "email_address"}):
            raise ConfigError(f"{name} may have only role, matrix_id and email_address")
        role = expect(c.get("role"), str, f"{name}.role")
        matrix_id = c.get("matrix_id")
        email = c.get("email_address")
        if matrix_id is None and email is None:
            raise ConfigError(f"{name} needs a matrix_id or an email_address")
        for key, value in (("matrix_id", matrix_id), ("email_address", email)):
            if value is not None:
                expect(value, str, f"{name}.{key}")
        parsed.append(SupportContact(role, matrix_id, email))
    return WellKnown(server=server, contacts=tuple(parsed), support_page=page)


def listener(raw: dict[str, Any], default: Listener, path: Callable[[Any, str], Path]) -> Listener:
    """``listen`` (the server name's host and port by default) and ``tls``."""
    listen = expect(raw.get("listen", {}), dict, "listen")
    host = expect(listen.get("host", default.host), str, "listen.host")
    port = expect(listen.get("port", default.port), int, "listen.port")
    if not 0 < port < 65536:
        raise ConfigError(f"listen.port must be 1-65535, got {port}")
    tls = expect(raw.get("tls") or {}, dict, "tls")
    cert = path(tls["certificate"], "tls.certificate") if tls.get("certificate") else None
    key = path(tls["private_key"], "tls.private_key") if tls.get("private_key") else None
    if (cert is None) != (key is None):
        raise ConfigError("tls needs both certificate and private_key")
    return Listener(host, port, cert, key)


def metrics(raw: Any) -> Metrics:
    expect(raw, dict, "metrics")
    return Metrics(
        enabled=expect(raw.get("enabled", False), bool, "metrics.enabled"),
        host=expect(raw.get("host", "127.0.0.1"), str, "metrics.host"),
        port=expect(raw.get("port", 9108), int, "metrics.port"),
    )


def rate_limit(raw: Any) -> RateLimit:
    expect(raw, dict, "rate_limit")
    return RateLimit(
        per_second=float(expect(raw.get("per_second", 10), (int, float), "rate_limit.per_second")),
        burst=expect(raw.get("burst", 50), int, "rate_limit.burst"),
    )


def login_limits(raw: Any) -> LoginLimits:
    expect(raw, dict, "rc_login")
    unknown = sorted(set(raw) - {"address", "account", "failed_attempts"})
    if unknown:
        raise ConfigError(f"rc_login: unknown keys: {', '.join(unknown)}")
    defaults = LoginLimits()
    return LoginLimits(
        *(
            rate(raw.get(name) or {}, getattr(defaults, name), f"rc_login.{name}")
            for name in ("address", "account", "failed_attempts")
        )
    )


def rate(raw: Any, default: Rate, name: str) -> Rate:
    """A Synapse-style rate limit: ``per_second`` and ``burst_count``."""
    given = expect(raw, dict, name)
    unknown = sorted(set(given) - {"per_second", "burst_count"})
    if unknown:
        raise ConfigError(f"{name}: unknown keys: {', '.join(unknown)}")
    per_second = expect(
        given.get("per_second", default.per_second), (int, float), f"{name}.per_second"
    )
    burst = expect(given.get("burst_count", default.burst_count), int, f"{name}.burst_count")
    if per_second < 0 or burst < 1:
        raise ConfigError(f"{name}: per_second >= 0 and burst_count >= 1")
    return Rate(float(per_second), burst)


#: The most thumbnail sizes an image may get, and the largest dimension of one.
MAX_THUMBNAIL_SIZES = 16
MAX_THUMBNAIL_DIMENSION = 10_000


def thumbnail_sizes(raw: Any) -> tuple[ThumbnailSize, ...]:
    if raw is None:
        return DEFAULT_THUMBNAIL_SIZES
    entries = expect(raw, list, "thumbnail_sizes")
    if not 1 <= len(entries) <= MAX_THUMBNAIL_SIZES:
        raise ConfigError(f"thumbnail_sizes must list 1-{MAX_THUMBNAIL_SIZES} sizes")
    sizes = []
    for i, entry in enumerate(entries):
        name = f"thumbnail_sizes[{i}]"
        expect(entry, dict, name)
        unknown = sorted(set(entry) - {"width", "height", "method"})
        if unknown:
            raise ConfigError(f"{name}: unknown keys: {', '.join(unknown)}")
        width = expect(entry.get("width"), int, f"{name}.width")
        height = expect(entry.get("height"), int, f"{name}.height")
        if not (0 < width <= MAX_THUMBNAIL_DIMENSION and 0 < height <= MAX_THUMBNAIL_DIMENSION):
            raise ConfigError(f"{name}: width and height must be 1-{MAX_THUMBNAIL_DIMENSION}")
        method = entry.get("method")
        if method not in ("crop", "scale"):
            raise ConfigError(f"{name}.method must be crop or scale, got {method!r}")
        sizes.append(ThumbnailSize(width, height, "crop" if method == "crop" else "scale"))
    return tuple(sizes)


def database(value: Any) -> str:
    url: str = expect(value, str, "database")
    if not url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
        raise ConfigError(
            "database must be sqlite+aiosqlite:///PATH or postgresql+asyncpg://USER@HOST/DB"
        )
    return url


def remote_media_cache(raw: Any) -> RemoteMediaCache:
    raw = section(raw, "remote_media_cache", {"max_size", "lifetime"})
    lifetime = raw.get("lifetime")
    return RemoteMediaCache(
        max_size=size(raw.get("max_size", "10G"), "remote_media_cache.max_size"),
        lifetime_ms=(
            duration_ms(lifetime, "remote_media_cache.lifetime") if lifetime is not None else None
        ),
    )


def password_policy(raw: Any) -> PasswordPolicy:
    flags = ("enabled", "require_digit", "require_symbol", "require_lowercase", "require_uppercase")
    raw = section(raw, "password_policy", {*flags, "minimum_length"})
    minimum = expect(raw.get("minimum_length", 0), int, "password_policy.minimum_length")
    if not 0 <= minimum <= 512:
        raise ConfigError(f"password_policy.minimum_length must be 0-512, got {minimum}")
    return PasswordPolicy(
        minimum_length=minimum,
        **{f: expect(raw.get(f, False), bool, f"password_policy.{f}") for f in flags},
    )


def push(raw: Any) -> PushSettings:
    raw = section(raw, "push", {"allow_private_addresses", "include_content"})
    return PushSettings(
        allow_private_addresses=expect(
            raw.get("allow_private_addresses", False), bool, "push.allow_private_addresses"
        ),
        include_content=expect(raw.get("include_content", True), bool, "push.include_content"),
    )


def section(raw: Any, name: str, known: set[str]) -> dict[str, Any]:
    expect(raw, dict, name)
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"unknown {name} keys: {', '.join(unknown)}")
    return dict(raw)


def presence(raw: Any) -> PresenceSettings:
    timers = ("last_active_granularity", "sync_online_timeout", "idle_timeout")
    raw = section(raw, "presence", {"enabled", *timers})
    default = PresenceSettings()
    return PresenceSettings(
        enabled=expect(raw.get("enabled", True), bool, "presence.enabled"),
        **{
            f"{t}_ms": duration_ms(raw.get(t, getattr(default, f"{t}_ms")), f"presence.{t}")
            for t in timers
        },
    )


def strings(value: Any, name: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{name} must be a list of strings")
    return tuple(value)


def turn(raw: Any) -> TurnSettings:
    raw = section(raw, "turn", {"uris", "shared_secret", "username", "password", "user_lifetime"})
    optional = {k: expect(raw.get(k), (str, type(None)), f"turn.{k}") for k in
                ("shared_secret", "username", "password")}  # fmt: skip
    return TurnSettings(
        uris=strings(raw.get("uris", []), "turn.uris"),
        user_lifetime_ms=duration_ms(raw.get("user_lifetime", "1h"), "turn.user_lifetime"),
        **optional,
    )


def url_preview(raw: Any) -> UrlPreviewSettings:
    known = {"enabled", "ip_range_denylist", "ip_range_allowlist", "max_size", "timeout", "cache"}
    raw = section(raw, "url_preview", known)
    ranges: dict[str, tuple[str, ...]] = {}
    for key in ("ip_range_denylist", "ip_range_allowlist"):
        ranges[key] = strings(raw.get(key, []), f"url_preview.{key}")
        for cidr in ranges[key]:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise ConfigError(f"url_preview.{key}: {cidr!r} is not an IP range") from None
    return UrlPreviewSettings(
        enabled=expect(raw.get("enabled", False), bool, "url_preview.enabled"),
        max_size=size(raw.get("max_size", "10M"), "url_preview.max_size"),
        timeout_ms=duration_ms(raw.get("timeout", "10s"), "url_preview.timeout"),
        cache_ms=duration_ms(raw.get("cache", "1h"), "url_preview.cache"),
        **ranges,
    )


def federation(raw: Any, path: Callable[[Any, str], Path]) -> FederationSettings:
    known = {"enabled", "verify_tls", "ca_file", "allow_private_addresses", "server_overrides"}
    raw = section(raw, "federation", {*known, "trusted_key_servers", "closed"})
    overrides = expect(raw.get("server_overrides") or {}, dict, "federation.server_overrides")
    for name, target in overrides.items():
        expect(target, str, f"federation.server_overrides[{name}]")
        if ":" not in target:
            raise ConfigError(f"federation.server_overrides[{name}] must be host:port")
    notaries = []
    for entry in expect(
        raw.get("trusted_key_servers") or [], list, "federation.trusted_key_servers"
    ):
        expect(entry, dict, "federation.trusted_key_servers entry")
        name = expect(entry.get("server_name"), str, "trusted_key_servers.server_name")
        keys = expect(entry.get("verify_keys") or {}, dict, "trusted_key_servers.verify_keys")
        notaries.append((name, tuple(sorted((str(k), str(v)) for k, v in keys.items()))))
    return FederationSettings(
        enabled=expect(raw.get("enabled", True), bool, "federation.enabled"),
        verify_tls=expect(raw.get("verify_tls", True), bool, "federation.verify_tls"),
        ca_file=path(raw["ca_file"], "federation.ca_file") if raw.get("ca_file") else None,
        allow_private_addresses=expect(
            raw.get("allow_private_addresses", False), bool, "federation.allow_private_addresses"
        ),
        server_overrides=tuple(sorted(overrides.items())),
        trusted_key_servers=tuple(notaries),
        closed=expect(raw.get("closed", False), bool, "federation.closed"),
    )
