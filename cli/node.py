"""``kairan init`` and ``kairan serve``: a new node's files, and running the node."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import click

from cli.common import DIR_OPTION

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


@click.command()
@click.option("--server-name", required=True, help="e.g. kairan.city.example.jp or 127.0.0.1:8448")
@DIR_OPTION
@click.option("--enable-registration", is_flag=True, help="Let anyone register (off by default).")
@click.option("--tls-self-signed", is_flag=True, help="Make a self-signed certificate (testing).")
def init(
    server_name: str, directory: Path, enable_registration: bool, tls_self_signed: bool
) -> None:
    """Write DIR/kairan.yaml and a signing key for a new node."""
    from homeserver.config import ConfigError
    from homeserver.node.setup import init_node

    try:
        path = init_node(
            server_name,
            directory,
            enable_registration=enable_registration,
            tls_self_signed=tls_self_signed,
        )
    except ConfigError as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"wrote {path}; start the node with: kairan serve --dir {directory}")


@click.command()
@DIR_OPTION
@click.option(
    "--dev",
    is_flag=True,
    help="Create a local development node (localhost:8008, open registration) if DIR has "
    "none; log each request.",
)
@click.option(
    "--log-level",
    type=click.Choice(LOG_LEVELS, case_sensitive=False),
    default="INFO",
    show_default=True,
)
@click.option(
    "--log-requests/--no-log-requests",
    default=None,
    help="Log each request in one line: method, path, status, milliseconds (access tokens "
    "redacted).  [default: on with --dev, else off]",
)
def serve(directory: Path, dev: bool, log_level: str, log_requests: bool | None) -> None:
    """Run the node in the foreground until SIGTERM or Ctrl-C."""
    from homeserver.config import CONFIG_FILE, ConfigError, load_config
    from homeserver.node.app import serve as serve_node
    from homeserver.node.setup import init_node
    from homeserver.storage.database import StorageError

    logging.basicConfig(level=log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if dev and not (directory / CONFIG_FILE).exists():
            init_node("localhost:8008", directory, enable_registration=True)
            click.echo(f"created a development node in {directory} (http://localhost:8008)")
        config = load_config(directory)
        access_log = dev if log_requests is None else log_requests
        asyncio.run(serve_node(config, access_log=access_log))
    except (ConfigError, StorageError) as e:
        raise click.ClickException(str(e)) from None
    except KeyboardInterrupt:
        pass
