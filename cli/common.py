"""What the command groups share: the ``--dir`` option, one-line failures, running an
action with the node's services, the features' extensions of core commands, and the
source checkout (for interop/ and the benchmarks)."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any, NoReturn

import click

from homeserver.node.commands import run_with_services as run_with_services

DIR_OPTION = click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="The node's directory (holds kairan.yaml).",
)


def fail(message: str) -> NoReturn:
    """End the command with ``Error: message`` (one line) and exit status 1."""
    raise click.ClickException(message)


@cache
def _extensions(command: str) -> tuple[Any, ...]:
    from homeserver.extensions.loading import feature_command_extensions

    return tuple(feature_command_extensions(command))


def extend_command(command: click.Command, name: str) -> click.Command:
    """Add the options the catalogued features declare for the core command ``name``
    ("user add"; homeserver/extensions/commands.py).  The command's callback receives their
    values as keyword arguments and runs :class:`FeatureHooks` around its work."""
    taken = {p.name for p in command.params}
    for extension in _extensions(name):
        for option in extension.options:
            if option.name in taken:
                raise ValueError(f"a feature's option {option.name!r} of '{name}' exists already")
            taken.add(option.name)
            command.params.append(option)
    return command


class FeatureHooks:
    """The features' extensions of one core command, with the values of their options."""

    def __init__(self, name: str, values: Mapping[str, Any]) -> None:
        self.extensions = _extensions(name)
        self.values = dict(values)

    async def before(self, services: Any) -> None:
        for extension in self.extensions:
            if extension.before is not None:
                await extension.before(services, self.values)

    async def after(self, services: Any, result: Any) -> None:
        for extension in self.extensions:
            if extension.after is not None:
                await extension.after(services, self.values, result)


def source_checkout() -> Path:
    """The Kairan source checkout this command runs from, put on ``sys.path``: interop/
    (the interop suite and the benchmarks) lies beside cli/ there and is not installed."""
    repo_root = Path(__file__).resolve().parent.parent
    if not (repo_root / "interop" / "run.py").exists():
        fail(f"no interop suite in {repo_root}: run this from a Kairan source checkout")
    if str(repo_root) not in sys.path:
        sys.path.insert(0, str(repo_root))
    return repo_root
