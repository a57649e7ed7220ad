"""The node's configuration: a YAML file read once into frozen dataclasses.

Every problem with the file is a :class:`ConfigError` with a one-line message; the
command line prints it and exits non-zero.  :mod:`.model` has the dataclasses,
:mod:`.load` reads and checks the file (:mod:`.sections` each of its sections),
:mod:`.template` writes the commented file of ``kairan init``.  Import the names from here.
"""

from __future__ import annotations

from homeserver.config.listeners import RESOURCES, FeatureSettings, Listener
from homeserver.config.load import load_config, parse_config
from homeserver.config.model import (
    CONFIG_FILE,
    DEFAULT_PORT,
    DEFAULT_THUMBNAIL_SIZES,
    Config,
    ConfigError,
    FederationSettings,
    LoginLimits,
    Metrics,
    PasswordPolicy,
    PushSettings,
    Rate,
    RateLimit,
    RemoteMediaCache,
    Sessions,
    SupportContact,
    ThumbnailSize,
    WellKnown,
    default_listener,
    sqlite_url,
)
from homeserver.config.template import render_config

__all__ = [
    "CONFIG_FILE",
    "DEFAULT_PORT",
    "DEFAULT_THUMBNAIL_SIZES",
    "RESOURCES",
    "Config",
    "ConfigError",
    "FeatureSettings",
    "FederationSettings",
    "Listener",
    "LoginLimits",
    "Metrics",
    "PasswordPolicy",
    "PushSettings",
    "Rate",
    "RateLimit",
    "RemoteMediaCache",
    "Sessions",
    "SupportContact",
    "ThumbnailSize",
    "WellKnown",
    "default_listener",
    "load_config",
    "parse_config",
    "render_config",
    "sqlite_url",
]
