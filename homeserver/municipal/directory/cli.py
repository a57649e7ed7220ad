"""``kairan org``: the organisation directory's commands.

``kairan org import FILE.csv --dir NODEDIR [--dry-run]`` runs the same import as the admin
API (``POST /_kairan/admin/v1/directory/import``) on the node's database: it lists every
change (``+`` added, ``~`` changed, ``-`` removed), and changes nothing on a dry run or when
the file has an error (each on its own line, with its line number; exit status 1).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from homeserver.municipal.directory.service import ImportReport

NAMES = ("directory", "homeserver.municipal.directory:register")


@click.group("org")
def cli() -> None:
    """The organisation directory (the directory feature)."""


@cli.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="The node's directory (holds kairan.yaml).",
)
@click.option("--dry-run", is_flag=True, help="List the changes and change nothing.")
def import_command(file: Path, directory: Path, dry_run: bool) -> None:
    """Import the staff CSV FILE (UTF-8 or Shift_JIS): it replaces the staff list of each
    organisation it names."""
    try:
        data = file.read_bytes()
    except OSError as e:
        raise click.ClickException(f"cannot read {file}: {e.strerror}") from None
    report = _run(directory, data, dry_run)
    if report.errors:
        for error in report.errors:
            click.echo(f"{file}: {error}", err=True)
        raise click.ClickException(f"{len(report.errors)} error(s); nothing was imported")
    for line in report.changes:
        click.echo(line)
    counts = report.counts
    summary = f"{counts['add']} added, {counts['change']} changed, {counts['remove']} removed"
    click.echo(f"dry run: {summary} (nothing changed)" if dry_run else summary)


def _run(directory: Path, data: bytes, dry_run: bool) -> ImportReport:
    from homeserver.extensions import FeatureContext
    from homeserver.municipal.directory.service import DirectoryService
    from homeserver.node.api import NodeApi
    from homeserver.node.commands import run_with_services

    async def run(services: Any) -> ImportReport:
        config = services.config
        enabled = [f for f in config.features if f.name in NAMES]
        if not enabled:
            raise click.ClickException(
                f"the directory feature is not enabled in {directory}/kairan.yaml"
            )
        context = FeatureContext(
            "directory", enabled[0].settings, config.server_name, config.directory,
            services.db, services.clock,
        )  # fmt: skip
        service = DirectoryService(context)
        node = NodeApi(
            config.server_name, services.rooms, services.accounts, None,
            profiles=services.directory,
        )  # fmt: skip
        await service.start(node)
        return await service.import_csv(data, dry_run=dry_run)

    return run_with_services(directory, run)
