"""``kairan token``: registration tokens."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from cli.common import DIR_OPTION, run_with_services


@click.group()
def token() -> None:
    """Registration tokens (what /register asks for when registration needs a token)."""


@token.command("new")
@DIR_OPTION
@click.option("--token", "value", default=None, help="The token (default: random).")
@click.option("--uses", type=click.IntRange(min=0), default=None, help="Registrations allowed.")
@click.option(
    "--days",
    type=click.FloatRange(min=0, max=36_500, min_open=True),
    default=None,
    help="Valid for this many days (default: no expiry).",
)
@click.option("--length", type=int, default=16, show_default=True, help="Random token length.")
def token_new(
    directory: Path, value: str | None, uses: int | None, days: float | None, length: int
) -> None:
    """Create a registration token and print it."""

    async def create(s: Any) -> dict[str, Any]:
        expiry = s.clock.now_ms() + int(days * 86_400_000) if days is not None else None
        created: dict[str, Any] = await s.tokens.create_registration_token(
            value, uses_allowed=uses, expiry_time=expiry, length=length
        )
        return created

    click.echo(run_with_services(directory, create)["token"])


@token.command("list")
@DIR_OPTION
def token_list(directory: Path) -> None:
    """List registration tokens as JSON."""
    tokens = run_with_services(directory, lambda s: s.tokens.list_registration_tokens())
    click.echo(json.dumps(tokens, ensure_ascii=False, indent=2))


@token.command("delete")
@click.argument("value", metavar="TOKEN")
@DIR_OPTION
def token_delete(value: str, directory: Path) -> None:
    """Delete a registration token."""
    run_with_services(directory, lambda s: s.tokens.delete_registration_token(value))
    click.echo(f"deleted {value}")
