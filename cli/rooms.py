"""``kairan room``: the rooms this node knows."""

from __future__ import annotations

import json
from pathlib import Path

import click

from cli.common import DIR_OPTION, run_with_services


@click.group()
def room() -> None:
    """Inspect rooms."""


@room.command("list")
@DIR_OPTION
@click.option("--json", "as_json", is_flag=True)
def room_list(directory: Path, as_json: bool) -> None:
    """List the rooms this node knows."""
    rooms = run_with_services(directory, lambda s: s.admin.list_rooms())
    if as_json:
        click.echo(json.dumps(rooms, ensure_ascii=False, indent=2))
        return
    for entry in rooms:
        click.echo(f"{entry['room_id']}\t{entry['joined_members']}\t{entry['name'] or ''}")


@room.command("show")
@click.argument("room_id")
@DIR_OPTION
def room_show(room_id: str, directory: Path) -> None:
    """Show a room's version, members and current state as JSON."""
    details = run_with_services(directory, lambda s: s.admin.room_details(room_id))
    click.echo(json.dumps(details, ensure_ascii=False, indent=2))


@room.command("reports")
@click.option(
    "--kind", type=click.Choice(["event", "room", "user"]), default="event", show_default=True
)
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@DIR_OPTION
@click.option("--json", "as_json", is_flag=True)
def room_reports(kind: str, limit: int, directory: Path, as_json: bool) -> None:
    """List the reports users filed (newest first)."""
    reports, _ = run_with_services(directory, lambda s: s.reports.list(kind, 0, limit))
    if as_json:
        click.echo(json.dumps(reports, ensure_ascii=False, indent=2))
        return
    for entry in reports:
        target = entry.get("event_id") or entry.get("room_id") or entry.get("target_user_id")
        reason = (entry["reason"] or "").replace("\n", " ")
        click.echo(f"{entry['id']}\t{entry['user_id']}\t{target}\t{reason}")
