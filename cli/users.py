"""``kairan user``: local user accounts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from cli.common import DIR_OPTION, FeatureHooks, extend_command, run_with_services


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
    localpart: str,
    directory: Path,
    password: str,
    admin: bool,
    displayname: str | None,
    **feature_values: Any,
) -> None:
    """Create the account @LOCALPART:server_name."""
    hooks = FeatureHooks("user add", feature_values)

    async def add(services: Any) -> str:
        await hooks.before(services)
        user_id: str = await services.admin.add_user(
            localpart, password, admin=admin, displayname=displayname
        )
        await hooks.after(services, user_id)
        return user_id

    click.echo(run_with_services(directory, add))


extend_command(user_add, "user add")


@user.command("list")
@DIR_OPTION
@click.option("--json", "as_json", is_flag=True)
def user_list(directory: Path, as_json: bool, **feature_values: Any) -> None:
    """List accounts."""
    hooks = FeatureHooks("user list", feature_values)

    async def listing(services: Any) -> list[dict[str, Any]]:
        await hooks.before(services)
        users: list[dict[str, Any]] = await services.admin.list_users(limit=100_000)
        # Features may add fields to each entry, and ``labels`` shown with the flags.
        await hooks.after(services, users)
        return users

    users = run_with_services(directory, listing)
    labels = {entry["user_id"]: entry.pop("labels", []) for entry in users}
    if as_json:
        click.echo(json.dumps(users, ensure_ascii=False, indent=2))
        return
    for entry in users:
        flags = [
            f
            for f in ("admin", "deactivated", "locked", "suspended")
            if entry.get(f)  # features may list accounts of their own without every flag
        ]
        flags += labels[entry["user_id"]]
        click.echo(f"{entry['user_id']}\t{entry['displayname'] or ''}\t{','.join(flags)}")


extend_command(user_list, "user list")


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


def _moderation(name: str, field: str, value: bool, done: str, doc: str) -> None:
    @user.command(name, help=doc)
    @click.argument("user_id")
    @DIR_OPTION
    def command(user_id: str, directory: Path) -> None:
        run_with_services(directory, lambda s: s.accounts.moderate(user_id, **{field: value}))
        click.echo(f"{done} {user_id}")


_moderation("lock", "locked", True, "locked",
            "Lock an account: its sessions stay, but every request but logging out gets "
            "401 M_USER_LOCKED until it is unlocked.")  # fmt: skip
_moderation("unlock", "locked", False, "unlocked", "Unlock a locked account.")
_moderation("suspend", "suspended", True, "suspended",
            "Suspend an account: it can read, leave and redact its own events, but not "
            "join, invite, send, redact others' events or change its profile "
            "(403 M_USER_SUSPENDED).")  # fmt: skip
_moderation("unsuspend", "suspended", False, "unsuspended", "Lift an account's suspension.")
