"""The ``kairan`` command: the root group and the registration of its command groups.

Each command group lives in a module of its own (cli/node.py, cli/users.py, ...); they are
thin click commands that load the config and call homeserver/.  The command groups of node
features (a feature module's ``cli``) are found through the feature catalogue
(homeserver/extensions/catalogue.py) and added by :func:`register_groups`, so that this
module never imports a feature by name.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterable

import click

from cli import bench, endpoints, interop, keys, node, rooms, tokens, users
from homeserver.extensions.loading import feature_command_paths


@click.group()
@click.version_option(package_name="kairan")
def main() -> None:
    """Kairan: a federated Matrix homeserver for municipalities."""


def register_groups(root: click.Group, groups: Iterable[str]) -> None:
    """Add each ``"module:attribute"`` click command of ``groups`` to ``root``.

    A name that is already taken (a built-in command or another feature's) is an error: a
    feature must not replace a command silently.
    """
    for entry in groups:
        module_name, _, attribute = entry.partition(":")
        command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{entry} is not a click command")
        if command.name in root.commands:
            raise ValueError(f"{entry}: the command '{command.name}' exists already")
        root.add_command(command)


for _command in (
    node.init,
    node.serve,
    users.user,
    rooms.room,
    tokens.token,
    keys.key,
    bench.bench,
    interop.interop,
    endpoints.endpoints,
):
    main.add_command(_command)
register_groups(main, feature_command_paths())


if __name__ == "__main__":
    main(sys.argv[1:])
