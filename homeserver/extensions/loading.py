"""Loading the features a node's configuration enables, and letting each register.

A feature is a package whose ``register(registry, context)`` function plugs its parts into
the :class:`~homeserver.extensions.registry.Registry`.  The features are found through the
catalogue (by name) or by import path, so the core never imports one statically.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from homeserver.common.clock import Clock
from homeserver.config.listeners import FeatureSettings
from homeserver.extensions.catalogue import CATALOGUE
from homeserver.extensions.commands import CommandExtension
from homeserver.extensions.registry import Extensions, RegistrationError, Registry


@dataclass(frozen=True)
class FeatureContext:
    """What a feature gets while it registers: its settings and the node's basics.
    Services of the node come later, with ``Registry.on_start``."""

    name: str
    #: The feature's section of kairan.yaml (``features: {name: {...}}``).
    settings: Mapping[str, Any]
    server_name: str
    #: The node's directory (kairan.yaml's folder), for the feature's own files.
    directory: Path
    #: The node's database, for the feature's own storage module.
    db: Any
    clock: Clock
    #: ``federation.closed`` of kairan.yaml: federate only with the servers features admit.
    federation_closed: bool = False


Register = Callable[[Registry, FeatureContext], None]


class FeatureError(Exception):
    """A feature could not be loaded or registered; the message is one line."""


def resolve(name: str) -> Register:
    """The ``register`` function of a feature named in the configuration."""
    target = CATALOGUE.get(name, name)
    if ":" not in target:
        known = ", ".join(sorted(CATALOGUE)) or "none yet"
        raise FeatureError(f"unknown feature {name!r} (known: {known}; or give module:function)")
    module_name, _, attribute = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise FeatureError(f"feature {name!r}: cannot import {module_name}: {e}") from e
    register = getattr(module, attribute, None)
    if not callable(register):
        raise FeatureError(f"feature {name!r}: {target} is not a function")
    return register  # type: ignore[no-any-return]


def feature_name(name: str) -> str:
    """The short name a feature registers under (its version table, its logs)."""
    if ":" not in name:
        return name
    module_name = name.partition(":")[0]
    return module_name.rsplit(".", 1)[-1]


def load_features(
    features: Sequence[FeatureSettings],
    *,
    server_name: str,
    directory: Path,
    db: Any,
    clock: Clock,
    federation_closed: bool = False,
) -> Extensions:
    """Let every enabled feature register, in the configured order, and freeze the result."""
    registry = Registry()
    for feature in features:
        register = resolve(feature.name)
        short = feature_name(feature.name)
        try:
            registry.begin(short)
        except RegistrationError as e:
            raise FeatureError(str(e)) from e
        context = FeatureContext(
            short, feature.settings, server_name, directory, db, clock, federation_closed
        )
        try:
            register(registry, context)
        except (RegistrationError, ValueError, TypeError, KeyError) as e:
            raise FeatureError(f"feature {short!r}: {e}") from e
    return registry.freeze()


def feature_command_paths() -> list[str]:
    """The command groups of the catalogued features, as ``module:cli`` for the ``kairan``
    command: a feature module may define ``cli``, a click group (``kairan <group> ...``).  A
    feature that cannot be imported is left out (``kairan serve`` names it when enabled)."""
    found = []
    for _name, target in sorted(CATALOGUE.items()):
        module_name = target.partition(":")[0]
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        if getattr(module, "cli", None) is not None:
            found.append(f"{module_name}:cli")
    return found


def feature_command_extensions(command: str) -> list[CommandExtension]:
    """What the catalogued features add to the core command ``command`` ("user add"): each
    feature module's ``command_extensions`` entries for it, in catalogue order.  A feature
    that cannot be imported is left out."""
    found: list[CommandExtension] = []
    for _name, target in sorted(CATALOGUE.items()):
        try:
            module = importlib.import_module(target.partition(":")[0])
        except ImportError:
            continue
        for extension in getattr(module, "command_extensions", ()):
            if isinstance(extension, CommandExtension) and extension.command == command:
                found.append(extension)
    return found
