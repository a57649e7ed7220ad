"""``kairan key``: signing key files."""

from __future__ import annotations

from pathlib import Path

import click

from cli.common import fail
from federation import signing
from federation.errors import KeyFormatError


@click.group()
def key() -> None:
    """Signing keys (Synapse's key file format: 'ed25519 <version> <seed>')."""


@key.command("generate")
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Key file to write (refuses to overwrite).",
)
@click.option("--version", "version", default=None, help="Key version (default: a_ + 4 letters).")
def key_generate(out: Path, version: str | None) -> None:
    """Write a new ed25519 signing key to OUT."""
    if out.exists():
        fail(f"{out} exists; refusing to overwrite a signing key")
    try:
        new_key = signing.generate_signing_key(version)
    except KeyFormatError as e:
        raise click.ClickException(str(e)) from e
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(new_key.key_file_line() + "\n", encoding="utf-8")
    out.chmod(0o600)
    click.echo(f"{new_key.key_id} {new_key.public_key_base64}")


@key.command("show")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def key_show(path: Path) -> None:
    """Print the key ID and public key of every key in a key file."""
    try:
        keys = signing.load_signing_keys(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise click.ClickException(f"cannot read key file {path}: {e.strerror}") from e
    except (KeyFormatError, UnicodeDecodeError) as e:
        raise click.ClickException(f"{path}: {e}") from e
    for loaded in keys:
        click.echo(f"{loaded.key_id} {loaded.public_key_base64}")
