"""``kairan interop``: the black-box interop suite (interop/ in the source checkout)."""

from __future__ import annotations

import sys

import click

from cli.common import source_checkout


@click.group()
def interop() -> None:
    """Black-box interop suite: real Kairan and Synapse nodes federating on loopback."""


@interop.command("run", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option(
    "--pairs",
    default="synapse-synapse",
    show_default=True,
    envvar="KAIRAN_INTEROP_PAIRS",
    help="all, or comma-separated A-B pairs: kairan-kairan, kairan-synapse, synapse-kairan, "
    "synapse-synapse.",
)
@click.option(
    "--with-synapse",
    is_flag=True,
    help="Create the pinned Synapse virtualenv (from PyPI) if it is not there yet.",
)
@click.option("--timeout", type=float, default=None, help="Seconds to wait for delivery.")
@click.option("--keep", is_flag=True, help="Keep the nodes' data directories and logs.")
@click.argument("pytest_args", nargs=-1, type=click.UNPROCESSED)
def interop_run(
    pairs: str,
    with_synapse: bool,
    timeout: float | None,
    keep: bool,
    pytest_args: tuple[str, ...],
) -> None:
    """Run the interop scenarios on the chosen pairs (extra arguments go to pytest)."""
    source_checkout()  # interop/ is a development tool beside cli/, not an installed package
    from interop.run import run_suite

    try:
        code = run_suite(
            pairs, with_synapse=with_synapse, timeout=timeout, keep=keep, extra=pytest_args
        )
    except (ValueError, RuntimeError) as e:
        raise click.ClickException(str(e)) from None
    sys.exit(code)
