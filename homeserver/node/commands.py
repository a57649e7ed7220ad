"""Running a command's work against a node's directory: what ``kairan`` (cli/) and the
features' own command groups share.

Each loads ``kairan.yaml``, opens the node (all its services, or only its database), runs
the action, closes what it opened, and turns the failures a reader can act on into one
line (click's ``Error: ...``, exit status 1): a bad configuration, a database that cannot
be opened, a Matrix error of a service, and the errors the caller names.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import click

T = TypeVar("T")


def _one_line(run: Coroutine[Any, Any, T], also: tuple[type[Exception], ...]) -> T:
    from homeserver.common.errors import MatrixError
    from homeserver.config import ConfigError
    from homeserver.storage.database import StorageError

    plain: tuple[type[Exception], ...] = (ConfigError, StorageError, *also)
    try:
        return asyncio.run(run)
    except plain as e:
        raise click.ClickException(str(e)) from None
    except MatrixError as e:
        raise click.ClickException(f"{e.errcode}: {e.message}") from None


def run_with_services(
    directory: Path,
    action: Callable[[Any], Awaitable[T]],
    *,
    also: tuple[type[Exception], ...] = (),
) -> T:
    """Build the node's services (its migrations and its features' run first), run
    ``action(services)``, close them."""
    from homeserver.config import load_config
    from homeserver.node.app import build_services, close_services

    async def run() -> T:
        services = await build_services(load_config(directory))
        try:
            return await action(services)
        finally:
            await close_services(services)

    return _one_line(run(), also)


def run_with_database(
    directory: Path,
    action: Callable[[Any], Awaitable[T]],
    *,
    feature: str,
    migrations: Path,
    enabled_only: bool = False,
    also: tuple[type[Exception], ...] = (),
) -> T:
    """Open only the node's database (the core's migrations and ``feature``'s run first),
    run ``action(db)``, close it.  With ``enabled_only`` a node whose kairan.yaml does not
    enable the feature is refused in one line."""
    from homeserver.config import load_config
    from homeserver.extensions.loading import feature_name
    from homeserver.storage.database import open_database
    from homeserver.storage.features import upgrade_feature

    async def run() -> T:
        config = load_config(directory)
        if enabled_only and feature not in {feature_name(f.name) for f in config.features}:
            raise click.ClickException(
                f"the {feature} feature is not enabled in {directory / 'kairan.yaml'}"
            )
        db = await open_database(config.database)
        try:
            await upgrade_feature(db, feature, migrations)
            return await action(db)
        finally:
            await db.close()

    return _one_line(run(), also)
