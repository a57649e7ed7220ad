"""The ``kairan`` command: thin click commands that load the config and call homeserver/."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from federation import signing
from federation.errors import KeyFormatError

T = TypeVar("T")

DIR_OPTION = click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="The node's directory (holds kairan.yaml).",
)


def _fail(message: str) -> None:
    raise click.ClickException(message)


def _run_with_services(directory: Path, action: Callable[[Any], Awaitable[T]]) -> T:
    """Load the node's config and services, run ``action(services)``, close everything."""
    from homeserver.common.errors import MatrixError
    from homeserver.config import ConfigError, load_config
    from homeserver.node.app import build_services, close_services
    from homeserver.storage.database import StorageError

    async def run() -> T:
        config = load_config(directory)
        services = await build_services(config)
        try:
            return await action(services)
        finally:
            await close_services(services)

    try:
        return asyncio.run(run())
    except (ConfigError, StorageError) as e:
        raise click.ClickException(str(e)) from None
    except MatrixError as e:
        raise click.ClickException(f"{e.errcode}: {e.message}") from None


@click.group()
@click.version_option(package_name="kairan")
def main() -> None:
    """Kairan: a federated Matrix homeserver for municipalities."""


# ---------------------------------------------------------------------- node


@main.command()
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


@main.command()
@DIR_OPTION
@click.option(
    "--dev",
    is_flag=True,
    help="Create a local development node (localhost:8008, open registration) if DIR has none.",
)
@click.option("--log-level", default="INFO", show_default=True)
def serve(directory: Path, dev: bool, log_level: str) -> None:
    """Run the node in the foreground until SIGTERM or Ctrl-C."""
    from homeserver.config import CONFIG_FILE, ConfigError, load_config
    from homeserver.node.app import serve as serve_node
    from homeserver.node.setup import init_node
    from homeserver.storage.database import StorageError

    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        if dev and not (directory / CONFIG_FILE).exists():
            init_node("localhost:8008", directory, enable_registration=True)
            click.echo(f"created a development node in {directory} (http://localhost:8008)")
        config = load_config(directory)
        asyncio.run(serve_node(config))
    except (ConfigError, StorageError) as e:
        raise click.ClickException(str(e)) from None
    except KeyboardInterrupt:
        pass


# ---------------------------------------------------------------------- users


@main.group()
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
    from homeserver.admin import ops

    user_id = _run_with_services(
        directory,
        lambda s: ops.add_user(s, localpart, password, admin=admin, displayname=displayname),
    )
    click.echo(user_id)


@user.command("list")
@DIR_OPTION
@click.option("--json", "as_json", is_flag=True)
def user_list(directory: Path, as_json: bool) -> None:
    """List accounts."""
    from homeserver.admin import ops

    users = _run_with_services(directory, lambda s: ops.list_users(s, limit=100_000))
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
    from homeserver.admin import ops

    _run_with_services(directory, lambda s: ops.deactivate_user(s, user_id))
    click.echo(f"deactivated {user_id}")


@user.command("reset-password")
@click.argument("user_id")
@DIR_OPTION
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
def user_reset_password(user_id: str, directory: Path, password: str) -> None:
    """Set a new password and log out every device of the account."""
    from homeserver.admin import ops

    _run_with_services(directory, lambda s: ops.reset_password(s, user_id, password))
    click.echo(f"password of {user_id} reset; all its devices were logged out")


# ---------------------------------------------------------------------- rooms


@main.group()
def room() -> None:
    """Inspect rooms."""


@room.command("list")
@DIR_OPTION
@click.option("--json", "as_json", is_flag=True)
def room_list(directory: Path, as_json: bool) -> None:
    """List the rooms this node knows."""
    from homeserver.admin import ops

    rooms = _run_with_services(directory, ops.list_rooms)
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
    from homeserver.admin import ops

    details = _run_with_services(directory, lambda s: ops.room_details(s, room_id))
    click.echo(json.dumps(details, ensure_ascii=False, indent=2))


# ---------------------------------------------------------------------- registration tokens


@main.group()
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
    from homeserver.admin import ops

    async def create(s: Any) -> dict[str, Any]:
        expiry = s.clock.now_ms() + int(days * 86_400_000) if days is not None else None
        return await ops.create_registration_token(
            s, value, uses_allowed=uses, expiry_time=expiry, length=length
        )

    click.echo(_run_with_services(directory, create)["token"])


@token.command("list")
@DIR_OPTION
def token_list(directory: Path) -> None:
    """List registration tokens as JSON."""
    from homeserver.admin import ops

    tokens = _run_with_services(directory, ops.list_registration_tokens)
    click.echo(json.dumps(tokens, ensure_ascii=False, indent=2))


@token.command("delete")
@click.argument("value", metavar="TOKEN")
@DIR_OPTION
def token_delete(value: str, directory: Path) -> None:
    """Delete a registration token."""
    from homeserver.admin import ops

    _run_with_services(directory, lambda s: ops.delete_registration_token(s, value))
    click.echo(f"deleted {value}")


# ---------------------------------------------------------------------- keys


@main.group()
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
        _fail(f"{out} exists; refusing to overwrite a signing key")
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


# ---------------------------------------------------------------------- benchmarks


@main.group()
def bench() -> None:
    """Benchmarks that print figures."""


@bench.command("storage")
@click.option("--members", default=1000, show_default=True, help="Members of the room (joins).")
@click.option("--messages", default=5000, show_default=True, help="Messages sent by 20 members.")
def bench_storage(members: int, messages: int) -> None:
    """Bytes on disk per event and state storage growth, on a throwaway SQLite node."""
    from interop.bench import storage as storage_bench

    storage_bench.main(max(members, 20), messages)


@bench.command("engine")
@click.option("--seconds", default=1.0, show_default=True, help="Time per throughput figure.")
@click.option("--repeat", default=5, show_default=True, help="State resolution runs (median).")
def bench_engine(seconds: float, repeat: int) -> None:
    """Protocol engine: ed25519, PDU verification, event signing, state resolution."""
    from interop.bench import engine as engine_bench

    engine_bench.main(seconds, repeat)


COUNT = click.IntRange(min=0)


@bench.command("client")
@click.option("--url", required=True, help="The homeserver's client base URL.")
@click.option("--users", default=10, type=COUNT, show_default=True, help="Extra room members.")
@click.option("--messages", default=500, type=COUNT, show_default=True, help="Sequential sends.")
@click.option("--senders", default=20, type=COUNT, show_default=True, help="Concurrent senders.")
@click.option("--per-sender", default=100, type=COUNT, show_default=True, help="Per sender.")
@click.option("--rooms", default=20, type=COUNT, show_default=True, help="Rooms to create.")
@click.option("--deliveries", default=100, type=COUNT, show_default=True, help="Sync samples.")
@click.option("--registration-token", default=None, help="Register with this token.")
@click.option("--pid", type=int, default=None, help="Server PID, to report its RSS.")
@click.option(
    "--ca-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Trust this CA certificate for https (private CA, self-signed node).",
)
def bench_client(
    url: str,
    users: int,
    messages: int,
    senders: int,
    per_sender: int,
    rooms: int,
    deliveries: int,
    registration_token: str | None,
    pid: int | None,
    ca_file: Path | None,
) -> None:
    """Any homeserver over the Client-Server API: latencies, throughput, sync, RSS."""
    from interop.bench import client as client_bench

    options = client_bench.BenchOptions(
        url, users, messages, senders, per_sender, rooms, deliveries, registration_token, pid,
        ca_file,
    )  # fmt: skip
    try:
        asyncio.run(client_bench.run(options, click.echo))
    except client_bench.BenchError as e:
        raise click.ClickException(str(e)) from None


@bench.command("federation")
@click.option("--messages", default=2000, type=COUNT, show_default=True, help="Throughput run.")
@click.option("--senders", default=10, type=click.IntRange(min=1), show_default=True)
@click.option("--latency-samples", default=200, type=COUNT, show_default=True)
@click.option(
    "--pairs",
    default="kairan-kairan,kairan-synapse,synapse-synapse",
    show_default=True,
    help="all, or comma-separated A-B pairs (A sends, B receives).",
)
@click.option("--stall-timeout", default=120.0, show_default=True, help="Seconds without arrivals.")
@click.option("--with-synapse", is_flag=True, help="Create the Synapse virtualenv if missing.")
def bench_federation(
    messages: int,
    senders: int,
    latency_samples: int,
    pairs: str,
    stall_timeout: float,
    with_synapse: bool,
) -> None:
    """Two fresh nodes per pair on loopback: delivery latency, throughput A->B, RSS."""
    repo_root = Path(__file__).resolve().parent.parent
    if not (repo_root / "interop" / "bench_federation.py").exists():
        _fail(f"no interop suite in {repo_root}: run this from a Kairan source checkout")
    if str(repo_root) not in sys.path:
        sys.path.insert(0, str(repo_root))
    from interop.bench import federation as fed
    from interop.run import prepare_synapse

    try:
        chosen = fed.parse_pairs(pairs)
        if any("synapse" in fed.PAIRS[p] for p in chosen):
            prepare_synapse(with_synapse)
        options = fed.FederationBenchOptions(
            chosen, messages, senders, latency_samples, stall_timeout=stall_timeout
        )
        results = fed.run(options, click.echo)
    except (fed.BenchError, RuntimeError) as e:
        raise click.ClickException(str(e)) from None
    if any(r.error for r in results):
        sys.exit(1)


# ---------------------------------------------------------------------- interop


@main.group()
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
    # interop/ is a development tool beside cli/ in the repository, not an installed package.
    repo_root = Path(__file__).resolve().parent.parent
    if not (repo_root / "interop" / "run.py").exists():
        _fail(f"no interop suite in {repo_root}: run this from a Kairan source checkout")
    if str(repo_root) not in sys.path:
        sys.path.insert(0, str(repo_root))
    from interop.run import run_suite

    try:
        code = run_suite(
            pairs, with_synapse=with_synapse, timeout=timeout, keep=keep, extra=pytest_args
        )
    except (ValueError, RuntimeError) as e:
        raise click.ClickException(str(e)) from None
    sys.exit(code)


if __name__ == "__main__":
    main(sys.argv[1:])
