"""Reading ``kairan.yaml``: YAML into the dataclasses of :mod:`.model`, every value
checked (:mod:`.sections` reads each section), every problem a one-line
:class:`ConfigError`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from federation.identifiers import InvalidIdentifier
from homeserver.config import sections as read
from homeserver.config.listeners import (
    ListenerConfigError,
    parse_features,
    parse_listeners,
)
from homeserver.config.model import (
    CONFIG_FILE,
    DEFAULT_MEDIA_DOWNLOAD_LIMIT,
    Config,
    ConfigError,
    default_listener,
    sqlite_url,
)

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
    server_name = read.expect(raw.get("server_name"), str, "server_name")
    try:
        default = default_listener(server_name)
    except InvalidIdentifier as e:
        raise ConfigError(str(e)) from e

    def path(value: Any, name: str) -> Path:
        p = Path(read.expect(value, str, name)).expanduser()
        return p if p.is_absolute() else directory / p

    try:
        listeners = parse_listeners(raw.get("listeners"), read.listener(raw, default, path), path)
        features = parse_features(raw.get("features"))
    except ListenerConfigError as e:
        raise ConfigError(str(e)) from None
    metrics = read.metrics(raw.get("metrics") or {})
    rate = read.rate_limit(raw.get("rate_limit") or {})
    database = read.database(raw.get("database") or sqlite_url(directory / "kairan.db"))
    federation = read.federation(raw.get("federation") or {}, path)
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
        max_upload_bytes=read.size(raw.get("max_upload_size", "50M"), "max_upload_size"),
        enable_registration=read.expect(
            raw.get("enable_registration", False), bool, "enable_registration"
        ),
        registration_requires_token=read.expect(
            raw.get("registration_requires_token", True), bool, "registration_requires_token"
        ),
        public_baseurl=raw.get("public_baseurl"),
        metrics=metrics,
        rate_limit=rate,
        login_limits=read.login_limits(raw.get("rc_login") or {}),
        admins=tuple(admins),
        testing=bool(raw.get("testing", False)),
        federation=federation,
        password_policy=read.password_policy(raw.get("password_policy") or {}),
        enable_authenticated_media=read.expect(
            raw.get("enable_authenticated_media", True), bool, "enable_authenticated_media"
        ),
        remote_media_cache=read.remote_media_cache(raw.get("remote_media_cache") or {}),
        push=read.push(raw.get("push") or {}),
        presence=read.presence(raw.get("presence") or {}),
        turn=read.turn(raw.get("turn") or {}),
        url_preview=read.url_preview(raw.get("url_preview") or {}),
        thumbnail_sizes=read.thumbnail_sizes(raw.get("thumbnail_sizes", None)),
        dynamic_thumbnails=read.expect(
            raw.get("dynamic_thumbnails", False), bool, "dynamic_thumbnails"
        ),
        media_download_limit=read.rate(
            raw.get("rc_media_download") or {}, DEFAULT_MEDIA_DOWNLOAD_LIMIT, "rc_media_download"
        ),
        sessions=read.sessions(raw),
        well_known=read.well_known(raw.get("well_known") or {}),
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
