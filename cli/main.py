"""The ``kairan`` command."""

from __future__ import annotations

import click


@click.group()
@click.version_option(package_name="kairan")
def main() -> None:
    """Kairan: a federated Matrix homeserver for municipalities."""


if __name__ == "__main__":
    main()
