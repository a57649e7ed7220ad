"""``kairan user``: local user accounts."""

from __future__ import annotations

import json
from pathlib import Path

import click

from cli.common import DIR_OPTION, run_with_services


@click.group()
def user() -> None:
    """Manage local user accounts."""


@user.command("add")
@click.argument("localpart")
@DIR_OPTION
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--admin", is_flag=True, help="Allow the admin API.")
@click.option("--displayname", default=None)
def user_add(
    localpart: str, directory: Path, password: str, admin: bool, displayname: str | None
) -> None:
    """Create the account @LOCALPART:server_name."""
    user_id = run_with_services(
        directory,
        lambda s: s.admin.add_user(localpart, password, admin=admin, displayname=displayname),
    )
    click.echo(user_id)


@user.command("list")
@DIR_OPTION
@click.option("--json", "as_json", is_flag=True)
def user_list(directory: Path, as_json: bool) -> None:
    """List accounts."""
    users = run_with_services(directory, lambda s: s.admin.list_users(limit=100_000))
    if as_json:
        click.echo(json.dumps(users, ensure_ascii=False, indent=2))
        return
    for entry in users:
        flags = ",".join(
            f for f, on in (("admin", entry["admin"]), ("deactivated", entry["deactivated"])) if on
        )
        click.echo(f"{entry['user_id']}\t{entry['displayname'] or ''}\t{flags}")


@user.command("deactivate")
@click.argument("user_id")
@DIR_OPTION
def user_deactivate(user_id: str, directory: Path) -> None:
    """Deactivate an account: it leaves its rooms and can no longer log in."""
    run_with_services(directory, lambda s: s.admin.deactivate_user(user_id))
    click.echo(f"deactivated {user_id}")


@user.command("reset-password")
@click.argument("user_id")
@DIR_OPTION
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
def user_reset_password(user_id: str, directory: Path, password: str) -> None:
    """Set a new password and log out every device of the account."""
    run_with_services(directory, lambda s: s.admin.reset_password(user_id, password))
    click.echo(f"password of {user_id} reset; all its devices were logged out")
