"""The partners feature's commands: ``--partner --expires`` of ``kairan user add``, the
partners' dates in ``kairan user list``, and ``kairan partner list / extend / end``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import click

from homeserver.extensions.commands import CommandExtension
from homeserver.extensions.loading import feature_name
from homeserver.municipal.partners import rules
from homeserver.municipal.partners.service import PartnerService, PartnerSettings

T = TypeVar("T")
NAME = "partners"


def partners_of(services: Any) -> PartnerService:
    """The partner accounts of the node whose services these are; a one-line error when
    the node does not enable the feature."""
    for feature in services.config.features:
        if feature_name(feature.name) == NAME:
            settings = PartnerSettings.parse(feature.settings)
            return PartnerService(settings, services.db, services.clock)
    raise click.ClickException(
        "the partners feature is not enabled on this node (add 'partners: {}' under "
        "'features:' in kairan.yaml)"
    )


def _date(value: str) -> dt.date:
    try:
        return rules.parse_date(value)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--expires") from None


def _not_past(service: PartnerService, expires: dt.date) -> None:
    today = rules.today(service.clock.now_ms(), service.settings.zone)
    if expires < today:
        raise click.BadParameter(
            f"{expires.isoformat()} is past (today is {today.isoformat()} in "
            f"{service.settings.zone.key})",
            param_hint="--expires",
        )


# ---------------------------------------------------------------------- kairan user add


async def _before_add(services: Any, values: Mapping[str, Any]) -> None:
    partner, expires = values.get("partner"), values.get("expires")
    if not partner and expires is None:
        return
    if not partner:
        raise click.UsageError("--expires is for partner accounts: add --partner")
    if expires is None:
        raise click.UsageError("a partner account needs --expires YYYY-MM-DD (its last day)")
    _not_past(partners_of(services), _date(expires))


async def _after_add(services: Any, values: Mapping[str, Any], user_id: Any) -> None:
    if not values.get("partner"):
        return
    service = partners_of(services)
    partner = await service.set(str(user_id), _date(values["expires"]), "cli")
    click.echo(
        f"partner account; its last day is {partner.expires.isoformat()} "
        f"({service.settings.zone.key})",
        err=True,
    )


async def _after_list(services: Any, values: Mapping[str, Any], users: Any) -> None:
    if NAME not in services.extensions.features:
        return
    service = partners_of(services)
    for entry in users:
        partner = await service.get(entry["user_id"])
        if partner is None:
            continue
        expired = service.expired(partner)
        entry["partner"] = {"expires": partner.expires.isoformat(), "expired": expired}
        state = "expired after" if expired else "until"
        entry.setdefault("labels", []).append(f"partner {state} {partner.expires.isoformat()}")


command_extensions = [
    CommandExtension(
        "user add",
        options=[
            click.Option(
                ["--partner"],
                is_flag=True,
                help="A partner account (partners feature): an outsider working with staff "
                "for a time; needs --expires.",
            ),
            click.Option(
                ["--expires"],
                metavar="YYYY-MM-DD",
                default=None,
                help="The last day a --partner account works (in the node's time zone).",
            ),
        ],
        before=_before_add,
        after=_after_add,
    ),
    CommandExtension("user list", after=_after_list),
]


# ---------------------------------------------------------------------- kairan partner

DIR_OPTION = click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="The node's directory (holds kairan.yaml).",
)


def _run(directory: Path, action: Callable[[PartnerService, Any], Awaitable[T]]) -> T:
    from homeserver.node.commands import run_with_services

    return run_with_services(directory, lambda services: action(partners_of(services), services))


@click.group("partner")
def cli() -> None:
    """Partner accounts (partners feature): list them, move their last day, end them."""


@cli.command("list")
@DIR_OPTION
def partner_list(directory: Path) -> None:
    """List partner accounts and their last day."""

    async def listing(service: PartnerService, services: Any) -> list[str]:
        return [
            f"{p.user_id}\t{p.expires.isoformat()}\t{'expired' if service.expired(p) else ''}"
            for p in await service.all()
        ]

    for line in _run(directory, listing):
        click.echo(line.rstrip("\t"))


@cli.command("extend")
@click.argument("user_id")
@click.option("--expires", required=True, metavar="YYYY-MM-DD", help="The new last day.")
@DIR_OPTION
def partner_extend(user_id: str, expires: str, directory: Path) -> None:
    """Move the last day of a partner account (or make USER_ID a partner)."""
    day = _date(expires)

    async def extend(service: PartnerService, services: Any) -> str:
        _not_past(service, day)
        await services.admin.require_local_user(user_id)
        partner = await service.set(user_id, day, "cli")
        return f"{user_id}: partner account until {partner.expires.isoformat()}"

    click.echo(_run(directory, extend))


@cli.command("end")
@click.argument("user_id")
@DIR_OPTION
def partner_end(user_id: str, directory: Path) -> None:
    """USER_ID is a partner account no more (it becomes an ordinary account; to end its
    access, deactivate it with 'kairan user deactivate')."""

    async def end(service: PartnerService, services: Any) -> bool:
        return await service.remove(user_id)

    if not _run(directory, end):
        raise click.ClickException(f"{user_id} is not a partner account")
    click.echo(f"{user_id} is no longer a partner account")
