"""Reading ``kairan.yaml``: YAML into the dataclasses of :mod:`.model`, every value
checked, every problem a one-line :class:`ConfigError`."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from federation.identifiers import InvalidIdentifier
from homeserver.config.listeners import (
    Listener,
    ListenerConfigError,
    parse_features,
    parse_listeners,
)
from homeserver.config.model import (
    CONFIG_FILE,
    DEFAULT_MEDIA_DOWNLOAD_LIMIT,
    DEFAULT_THUMBNAIL_SIZES,
    Config,
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
    default_listener,
    sqlite_url,
)

_SIZE_SUFFIXES = {"K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
_DURATION_UNITS_MS = {
    "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000,
    "y": 31_536_000_000,
}  # fmt: skip


def _size(value: Any, name: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    if isinstance(value, str) and value[:-1].isdigit() and value[-1:].upper() in _SIZE_SUFFIXES:
        return int(value[:-1]) * _SIZE_SUFFIXES[value[-1].upper()]
    raise ConfigError(f"{name} must be a size such as 50M, got {value!r}")


def _duration_ms(value: Any, name: str) -> int:
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


def _expect(value: Any, kind: type | tuple[type, ...], name: str) -> Any:
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise ConfigError(f"{name} must be {names}, got {value!r}")
    return value


_KNOWN_KEYS = {
    "server_name", "listen", "database", "signing_key_path", "media_path", "max_upload_size",
    "enable_registration", "registration_requires_token", "public_baseurl", "tls", "metrics",
    "rate_limit", "admins", "testing", "federation", "password_policy",
    "enable_authenticated_media", "remote_media_cache", "push", "listeners", "features",
    "rc_login", "thumbnail_sizes", "dynamic_thumbnails", "rc_media_download",
    "refreshable_access_token_lifetime", "refresh_token_lifetime", "login_via_existing_session",
    "well_known",
    "presence", "turn", "url_preview",
}  # fmt: skip


def parse_config(raw: Any, directory: Path) -> Config:
    """Validate a parsed YAML document; relative paths are relative to ``directory``."""
    if not isinstance(raw, dict):
        raise ConfigError("the configuration must be a YAML mapping")
    unknown = sorted(set(raw) - _KNOWN_KEYS)
    if unknown:
        raise ConfigError(f"unknown configuration keys: {', '.join(unknown)}")
    server_name = _expect(raw.get("server_name"), str, "server_name")
    try:
        default = default_listener(server_name)
    except InvalidIdentifier as e:
        raise ConfigError(str(e)) from e

    def path(value: Any, name: str) -> Path:
        p = Path(_expect(value, str, name)).expanduser()
        return p if p.is_absolute() else directory / p

    try:
        listeners = parse_listeners(raw.get("listeners"), _listener(raw, default, path), path)
        features = parse_features(raw.get("features"))
    except ListenerConfigError as e:
        raise ConfigError(str(e)) from None
    metrics = _metrics(raw.get("metrics") or {})
    rate = _rate_limit(raw.get("rate_limit") or {})
    database = _database(raw.get("database") or sqlite_url(directory / "kairan.db"))
    federation = _federation(raw.get("federation") or {}, path)
    admins = raw.get("admins") or []
    if not isinstance(admins, list) or not all(isinstance(a, str) for a in admins):
        raise ConfigError("admins must be a list of user localparts")
    return Config(
        server_name=server_name,
        directory=directory,
        listener=listeners[0],
        listeners=listeners,
        features=features,
        database=database,
        signing_key_path=path(raw.get("signing_key_path", "signing.key"), "signing_key_path"),
        media_path=path(raw.get("media_path", "media"), "media_path"),
        max_upload_bytes=_size(raw.get("max_upload_size", "50M"), "max_upload_size"),
        enable_registration=_expect(
            raw.get("enable_registration", False), bool, "enable_registration"
        ),
        registration_requires_token=_expect(
            raw.get("registration_requires_token", True), bool, "registration_requires_token"
        ),
        public_baseurl=raw.get("public_baseurl"),
        metrics=metrics,
        rate_limit=rate,
        login_limits=_login_limits(raw.get("rc_login") or {}),
        admins=tuple(admins),
        testing=bool(raw.get("testing", False)),
        federation=federation,
        password_policy=_password_policy(raw.get("password_policy") or {}),
        enable_authenticated_media=_expect(
            raw.get("enable_authenticated_media", True), bool, "enable_authenticated_media"
        ),
        remote_media_cache=_remote_media_cache(raw.get("remote_media_cache") or {}),
        push=_push(raw.get("push") or {}),
        presence=_presence(raw.get("presence") or {}),
        turn=_turn(raw.get("turn") or {}),
        url_preview=_url_preview(raw.get("url_preview") or {}),
        thumbnail_sizes=_thumbnail_sizes(raw.get("thumbnail_sizes", None)),
        dynamic_thumbnails=_expect(
            raw.get("dynamic_thumbnails", False), bool, "dynamic_thumbnails"
        ),
        media_download_limit=_rate(
            raw.get("rc_media_download") or {}, DEFAULT_MEDIA_DOWNLOAD_LIMIT, "rc_media_download"
        ),
        sessions=_sessions(raw),
        well_known=_well_known(raw.get("well_known") or {}),
    )


def _sessions(raw: dict[str, Any]) -> Sessions:
    existing = raw.get("login_via_existing_session") or {}
    _expect(existing, dict, "login_via_existing_session")
    unknown = sorted(set(existing) - {"enabled", "require_ui_auth", "token_timeout"})
    if unknown:
        raise ConfigError(f"unknown login_via_existing_session keys: {', '.join(unknown)}")
    refresh = raw.get("refresh_token_lifetime")
    return Sessions(
        refreshable_access_token_lifetime_ms=_duration_ms(
            raw.get("refreshable_access_token_lifetime", "5m"), "refreshable_access_token_lifetime"
        ),
        refresh_token_lifetime_ms=(
            None if refresh is None else _duration_ms(refresh, "refresh_token_lifetime")
        ),
        login_token_enabled=_expect(
            existing.get("enabled", False), bool, "login_via_existing_session.enabled"
        ),
        login_token_require_ui_auth=_expect(
            existing.get("require_ui_auth", True),
            bool,
            "login_via_existing_session.require_ui_auth",
        ),
        login_token_timeout_ms=_duration_ms(
            existing.get("token_timeout", "5m"), "login_via_existing_session.token_timeout"
        ),
    )


def _well_known(raw: Any) -> WellKnown:
    _expect(raw, dict, "well_known")
    unknown = sorted(set(raw) - {"server", "support"})
    if unknown:
        raise ConfigError(f"unknown well_known keys: {', '.join(unknown)}")
    server = raw.get("server")
    if server is not None:
        _expect(server, str, "well_known.server")
    support = raw.get("support") or {}
    _expect(support, dict, "well_known.support")
    if sorted(set(support) - {"contacts", "support_page"}):
        raise ConfigError("well_known.support may have only contacts and support_page")
    page = support.get("support_page")
    if page is not None:
        _expect(page, str, "well_known.support.support_page")
    contacts = support.get("contacts") or []
    _expect(contacts, list, "well_known.support.contacts")
    parsed = []
    for i, c in enumerate(contacts):
        name = f"well_known.support.contacts[{i}]"
        _expect(c, dict, name)
        if sorted(set(c) - {"role", "matrix_id", "email_address"}):
            raise ConfigError(f"{name} may have only role, matrix_id and email_address")
        role = _expect(c.get("role"), str, f"{name}.role")
        matrix_id = c.get("matrix_id")
        email = c.get("email_address")
        if matrix_id is None and email is None:
            raise ConfigError(f"{name} needs a matrix_id or an email_address")
        for key, value in (("matrix_id", matrix_id), ("email_address", email)):
            if value is not None:
                _expect(value, str, f"{name}.{key}")
        parsed.append(SupportContact(role, matrix_id, email))
    return WellKnown(server=server, contacts=tuple(parsed), support_page=page)


def _listener(raw: dict[str, Any], default: Listener, path: Callable[[Any, str], Path]) -> Listener:
    """``listen`` (the server name's host and port by default) and ``tls``."""
    listen = _expect(raw.get("listen", {}), dict, "listen")
    host = _expect(listen.get("host", default.host), str, "listen.host")
    port = _expect(listen.get("port", default.port), int, "listen.port")
    if not 0 < port < 65536:
        raise ConfigError(f"listen.port must be 1-65535, got {port}")
    tls = _expect(raw.get("tls") or {}, dict, "tls")
    cert = path(tls["certificate"], "tls.certificate") if tls.get("certificate") else None
    key = path(tls["private_key"], "tls.private_key") if tls.get("private_key") else None
    if (cert is None) != (key is None):
        raise ConfigError("tls needs both certificate and private_key")
    return Listener(host, port, cert, key)


def _metrics(raw: Any) -> Metrics:
    _expect(raw, dict, "metrics")
    return Metrics(
        enabled=_expect(raw.get("enabled", False), bool, "metrics.enabled"),
        host=_expect(raw.get("host", "127.0.0.1"), str, "metrics.host"),
        port=_expect(raw.get("port", 9108), int, "metrics.port"),
    )


def _rate_limit(raw: Any) -> RateLimit:
    _expect(raw, dict, "rate_limit")
    return RateLimit(
        per_second=float(_expect(raw.get("per_second", 10), (int, float), "rate_limit.per_second")),
        burst=_expect(raw.get("burst", 50), int, "rate_limit.burst"),
    )


def _login_limits(raw: Any) -> LoginLimits:
    _expect(raw, dict, "rc_login")
    unknown = sorted(set(raw) - {"address", "account", "failed_attempts"})
    if unknown:
        raise ConfigError(f"rc_login: unknown keys: {', '.join(unknown)}")
    defaults = LoginLimits()
    return LoginLimits(
        *(
            _rate(raw.get(name) or {}, getattr(defaults, name), f"rc_login.{name}")
            for name in ("address", "account", "failed_attempts")
        )
    )


def _rate(raw: Any, default: Rate, name: str) -> Rate:
    """A Synapse-style rate limit: ``per_second`` and ``burst_count``."""
    section = _expect(raw, dict, name)
    unknown = sorted(set(section) - {"per_second", "burst_count"})
    if unknown:
        raise ConfigError(f"{name}: unknown keys: {', '.join(unknown)}")
    per_second = _expect(
        section.get("per_second", default.per_second), (int, float), f"{name}.per_second"
    )
    burst = _expect(section.get("burst_count", default.burst_count), int, f"{name}.burst_count")
    if per_second < 0 or burst < 1:
        raise ConfigError(f"{name}: per_second >= 0 and burst_count >= 1")
    return Rate(float(per_second), burst)


#: The most thumbnail sizes an image may get, and the largest dimension of one.
MAX_THUMBNAIL_SIZES = 16
MAX_THUMBNAIL_DIMENSION = 10_000


def _thumbnail_sizes(raw: Any) -> tuple[ThumbnailSize, ...]:
    if raw is None:
        return DEFAULT_THUMBNAIL_SIZES
    entries = _expect(raw, list, "thumbnail_sizes")
    if not 1 <= len(entries) <= MAX_THUMBNAIL_SIZES:
        raise ConfigError(f"thumbnail_sizes must list 1-{MAX_THUMBNAIL_SIZES} sizes")
    sizes = []
    for i, entry in enumerate(entries):
        name = f"thumbnail_sizes[{i}]"
        _expect(entry, dict, name)
        unknown = sorted(set(entry) - {"width", "height", "method"})
        if unknown:
            raise ConfigError(f"{name}: unknown keys: {', '.join(unknown)}")
        width = _expect(entry.get("width"), int, f"{name}.width")
        height = _expect(entry.get("height"), int, f"{name}.height")
        if not (0 < width <= MAX_THUMBNAIL_DIMENSION and 0 < height <= MAX_THUMBNAIL_DIMENSION):
            raise ConfigError(f"{name}: width and height must be 1-{MAX_THUMBNAIL_DIMENSION}")
        method = entry.get("method")
        if method not in ("crop", "scale"):
            raise ConfigError(f"{name}.method must be crop or scale, got {method!r}")
        sizes.append(ThumbnailSize(width, height, "crop" if method == "crop" else "scale"))
    return tuple(sizes)


def _database(value: Any) -> str:
    database: str = _expect(value, str, "database")
    if not database.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
        raise ConfigError(
            "database must be sqlite+aiosqlite:///PATH or postgresql+asyncpg://USER@HOST/DB"
        )
    return database


def _remote_media_cache(raw: Any) -> RemoteMediaCache:
    _expect(raw, dict, "remote_media_cache")
    unknown = sorted(set(raw) - {"max_size", "lifetime"})
    if unknown:
        raise ConfigError(f"unknown remote_media_cache keys: {', '.join(unknown)}")
    lifetime = raw.get("lifetime")
    return RemoteMediaCache(
        max_size=_size(raw.get("max_size", "10G"), "remote_media_cache.max_size"),
        lifetime_ms=(
            _duration_ms(lifetime, "remote_media_cache.lifetime") if lifetime is not None else None
        ),
    )


def _password_policy(raw: Any) -> PasswordPolicy:
    _expect(raw, dict, "password_policy")
    flags = ("enabled", "require_digit", "require_symbol", "require_lowercase", "require_uppercase")
    unknown = sorted(set(raw) - {*flags, "minimum_length"})
    if unknown:
        raise ConfigError(f"unknown password_policy keys: {', '.join(unknown)}")
    minimum = _expect(raw.get("minimum_length", 0), int, "password_policy.minimum_length")
    if not 0 <= minimum <= 512:
        raise ConfigError(f"password_policy.minimum_length must be 0-512, got {minimum}")
    return PasswordPolicy(
        minimum_length=minimum,
        **{f: _expect(raw.get(f, False), bool, f"password_policy.{f}") for f in flags},
    )


def _push(raw: Any) -> PushSettings:
    _expect(raw, dict, "push")
    unknown = sorted(set(raw) - {"allow_private_addresses", "include_content"})
    if unknown:
        raise ConfigError(f"unknown push keys: {', '.join(unknown)}")
    return PushSettings(
        allow_private_addresses=_expect(
            raw.get("allow_private_addresses", False), bool, "push.allow_private_addresses"
        ),
        include_content=_expect(raw.get("include_content", True), bool, "push.include_content"),
    )


def _section(raw: Any, name: str, known: set[str]) -> dict[str, Any]:
    _expect(raw, dict, name)
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"unknown {name} keys: {', '.join(unknown)}")
    return dict(raw)


def _presence(raw: Any) -> PresenceSettings:
    timers = ("last_active_granularity", "sync_online_timeout", "idle_timeout")
    raw = _section(raw, "presence", {"enabled", *timers})
    default = PresenceSettings()
    return PresenceSettings(
        enabled=_expect(raw.get("enabled", True), bool, "presence.enabled"),
        **{
            f"{t}_ms": _duration_ms(raw.get(t, getattr(default, f"{t}_ms")), f"presence.{t}")
            for t in timers
        },
    )


def _strings(value: Any, name: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{name} must be a list of strings")
    return tuple(value)


def _turn(raw: Any) -> TurnSettings:
    raw = _section(raw, "turn", {"uris", "shared_secret", "username", "password", "user_lifetime"})
    optional = {k: _expect(raw.get(k), (str, type(None)), f"turn.{k}") for k in
                ("shared_secret", "username", "password")}  # fmt: skip
    return TurnSettings(
        uris=_strings(raw.get("uris", []), "turn.uris"),
        user_lifetime_ms=_duration_ms(raw.get("user_lifetime", "1h"), "turn.user_lifetime"),
        **optional,
    )


def _url_preview(raw: Any) -> UrlPreviewSettings:
    known = {"enabled", "ip_range_denylist", "ip_range_allowlist", "max_size", "timeout", "cache"}
    raw = _section(raw, "url_preview", known)
    ranges: dict[str, tuple[str, ...]] = {}
    for key in ("ip_range_denylist", "ip_range_allowlist"):
        ranges[key] = _strings(raw.get(key, []), f"url_preview.{key}")
        for cidr in ranges[key]:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise ConfigError(f"url_preview.{key}: {cidr!r} is not an IP range") from None
    return UrlPreviewSettings(
        enabled=_expect(raw.get("enabled", False), bool, "url_preview.enabled"),
        max_size=_size(raw.get("max_size", "10M"), "url_preview.max_size"),
        timeout_ms=_duration_ms(raw.get("timeout", "10s"), "url_preview.timeout"),
        cache_ms=_duration_ms(raw.get("cache", "1h"), "url_preview.cache"),
        **ranges,
    )


def _federation(raw: Any, path: Callable[[Any, str], Path]) -> FederationSettings:
    _expect(raw, dict, "federation")
    unknown = sorted(
        set(raw)
        - {
            "enabled",
            "verify_tls",
            "ca_file",
            "allow_private_addresses",
            "server_overrides",
            "trusted_key_servers",
            "closed",
        }
    )
    if unknown:
        raise ConfigError(f"unknown federation keys: {', '.join(unknown)}")
    overrides = _expect(raw.get("server_overrides") or {}, dict, "federation.server_overrides")
    for name, target in overrides.items():
        _expect(target, str, f"federation.server_overrides[{name}]")
        if ":" not in target:
            raise ConfigError(f"federation.server_overrides[{name}] must be host:port")
    notaries = []
    for entry in _expect(
        raw.get("trusted_key_servers") or [], list, "federation.trusted_key_servers"
    ):
        _expect(entry, dict, "federation.trusted_key_servers entry")
        name = _expect(entry.get("server_name"), str, "trusted_key_servers.server_name")
        keys = _expect(entry.get("verify_keys") or {}, dict, "trusted_key_servers.verify_keys")
        notaries.append((name, tuple(sorted((str(k), str(v)) for k, v in keys.items()))))
    return FederationSettings(
        enabled=_expect(raw.get("enabled", True), bool, "federation.enabled"),
        verify_tls=_expect(raw.get("verify_tls", True), bool, "federation.verify_tls"),
        ca_file=path(raw["ca_file"], "federation.ca_file") if raw.get("ca_file") else None,
        allow_private_addresses=_expect(
            raw.get("allow_private_addresses", False), bool, "federation.allow_private_addresses"
        ),
        server_overrides=tuple(sorted(overrides.items())),
        trusted_key_servers=tuple(notaries),
        closed=_expect(raw.get("closed", False), bool, "federation.closed"),
    )


def load_config(directory: Path) -> Config:
    """Read ``DIRECTORY/kairan.yaml``."""
    path = directory / CONFIG_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"no configuration at {path}: run 'kairan init' first") from None
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror}") from e
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}{where}: not valid YAML ({getattr(e, 'problem', e)})") from e
    try:
        return parse_config(raw, directory.resolve())
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from e
