"""The ``kairan`` command: the root group and the registration of its command groups.

Each command group lives in a module of its own (cli/node.py, cli/users.py, ...); they are
thin click commands that load the config and call homeserver/.  Commands that node features
contribute are registered by :func:`register_groups` from :data:`FEATURE_GROUPS`, so that
this module never imports a feature.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterable

import click

from cli import bench, interop, keys, node, rooms, tokens, users

#: The commands of node features, each as ``"module:attribute"`` naming a click group (or
#: command).  A feature package adds its entry here (or the feature registry in
#: homeserver/extensions fills the list); the module is imported when the command line is
#: built.  Empty while no feature has commands.
FEATURE_GROUPS: list[str] = []


@click.group()
@click.version_option(package_name="kairan")
def main() -> None:
    """Kairan: a federated Matrix homeserver for municipalities."""


def register_groups(root: click.Group, groups: Iterable[str] = FEATURE_GROUPS) -> None:
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
):
    main.add_command(_command)
register_groups(main)


if __name__ == "__main__":
    main(sys.argv[1:])
