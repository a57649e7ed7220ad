"""The ``listeners`` and ``features`` sections of kairan.yaml.

A node may listen on several addresses, each in a network zone (the LGWAN side, the
internet side...): features attach middleware to zones, and each listener serves only the
resources it names.  ``features`` lists what the node enables, each with its settings.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RESOURCES = ("client", "federation", "admin")
DEFAULT_ZONE = "default"
_ZONE = re.compile(r"[a-z][a-z0-9_-]{0,31}")
_FEATURE = re.compile(r"[a-z][a-z0-9_]{0,63}|[A-Za-z_][\w.]*:[A-Za-z_]\w*")


class ListenerConfigError(ValueError):
    """Raised with a one-line reason (the caller turns it into a ConfigError)."""


@dataclass(frozen=True)
class Listener:
    host: str
    port: int
    tls_certificate: Path | None = None
    tls_private_key: Path | None = None
    #: The network zone (features attach middleware per zone).
    zone: str = DEFAULT_ZONE
    #: What it serves: the Client-Server API and media ("client"), federation and keys
    #: ("federation"), the admin API ("admin").
    resources: tuple[str, ...] = RESOURCES


@dataclass(frozen=True)
class FeatureSettings:
    #: A name from the catalogue, or ``module.path:function`` for a feature kept elsewhere.
    name: str
    settings: Mapping[str, Any]


def parse_listeners(
    raw: Any, default: Listener, path: Callable[[Any, str], Path]
) -> tuple[Listener, ...]:
    """``listeners`` (a list), or ``(default,)`` when there is none."""
    if raw is None:
        return (default,)
    if not isinstance(raw, list) or not raw:
        raise ListenerConfigError("listeners must be a non-empty list")
    found = tuple(_listener(item, i, default, path) for i, item in enumerate(raw))
    seen: set[tuple[str, int]] = set()
    for listener in found:
        if (listener.host, listener.port) in seen:
            raise ListenerConfigError(f"two listeners on {listener.host}:{listener.port}")
        seen.add((listener.host, listener.port))
    return found


def _listener(
    item: Any, index: int, default: Listener, path: Callable[[Any, str], Path]
) -> Listener:
    where = f"listeners[{index}]"
    if not isinstance(item, dict):
        raise ListenerConfigError(f"{where} must be a mapping")
    unknown = sorted(set(item) - {"host", "port", "zone", "resources", "tls"})
    if unknown:
        raise ListenerConfigError(f"{where}: unknown keys: {', '.join(unknown)}")
    host = item.get("host", default.host)
    port = item.get("port", default.port)
    if not isinstance(host, str) or not host:
        raise ListenerConfigError(f"{where}.host must be a string")
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        raise ListenerConfigError(f"{where}.port must be 1-65535")
    zone = item.get("zone", DEFAULT_ZONE)
    if not isinstance(zone, str) or not _ZONE.fullmatch(zone):
        raise ListenerConfigError(f"{where}.zone must be a lower-case name, got {zone!r}")
    resources = item.get("resources", list(RESOURCES))
    if (
        not isinstance(resources, list)
        or not resources
        or any(r not in RESOURCES for r in resources)
    ):
        raise ListenerConfigError(
            f"{where}.resources must be a non-empty list of {', '.join(RESOURCES)}"
        )
    cert, key = default.tls_certificate, default.tls_private_key
    if "tls" in item:
        tls = item["tls"]
        if tls is None:
            cert = key = None
        elif isinstance(tls, dict) and tls.get("certificate") and tls.get("private_key"):
            cert = path(tls["certificate"], f"{where}.tls.certificate")
            key = path(tls["private_key"], f"{where}.tls.private_key")
        else:
            raise ListenerConfigError(f"{where}.tls needs both certificate and private_key")
    return Listener(host, port, cert, key, zone, tuple(dict.fromkeys(resources)))


def parse_features(raw: Any) -> tuple[FeatureSettings, ...]:
    """``features``: a list of names, or a mapping of name to settings."""
    if raw is None:
        return ()
    if isinstance(raw, list):
        raw = {name: {} for name in raw} if all(isinstance(n, str) for n in raw) else None
    if not isinstance(raw, dict):
        raise ListenerConfigError("features must be a list of names or a mapping of settings")
    found = []
    for name, settings in raw.items():
        if not isinstance(name, str) or not _FEATURE.fullmatch(name):
            raise ListenerConfigError(f"features: {name!r} is not a feature name")
        if settings is None:
            settings = {}
        if not isinstance(settings, dict):
            raise ListenerConfigError(f"features.{name} must be a mapping of settings")
        found.append(FeatureSettings(name, settings))
    return tuple(found)
