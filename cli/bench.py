"""``kairan bench``: the benchmarks (interop/bench/, in the source checkout: not installed)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click

from cli.common import source_checkout


@click.group()
def bench() -> None:
    """Benchmarks that print figures."""


@bench.command("storage")
@click.option("--members", default=1000, show_default=True, help="Members of the room (joins).")
@click.option("--messages", default=5000, show_default=True, help="Messages sent by 20 members.")
def bench_storage(members: int, messages: int) -> None:
    """Bytes on disk per event and state storage growth, on a throwaway SQLite node."""
    source_checkout()
    from interop.bench import storage as storage_bench

    storage_bench.main(max(members, 20), messages)


@bench.command("directory")
@click.option("--staff", default=50_000, show_default=True, help="Staff over the 4 nodes.")
@click.option("--rounds", default=300, show_default=True, help="Searches of each kind.")
@click.option("--postgres", default=None, help="A PostgreSQL server URL (default: SQLite).")
def bench_directory(staff: int, rounds: int, postgres: str | None) -> None:
    """Organisation directory search over 4 nodes: local and federated p50/p99."""
    source_checkout()
    from interop.bench import directory as directory_bench

    directory_bench.main(max(staff, 4), max(rounds, 1), postgres)


@bench.command("engine")
@click.option("--seconds", default=1.0, show_default=True, help="Time per throughput figure.")
@click.option("--repeat", default=5, show_default=True, help="State resolution runs (median).")
def bench_engine(seconds: float, repeat: int) -> None:
    """Protocol engine: ed25519, PDU verification, event signing, state resolution."""
    source_checkout()
    from interop.bench import engine as engine_bench

    engine_bench.main(seconds, repeat)


@bench.command("consortium")
@click.option("--members", default=60, show_default=True, help="Members of the document.")
@click.option("--rounds", default=5, show_default=True, help="New versions to propagate.")
def bench_consortium(members: int, rounds: int) -> None:
    """Closed federation: the peer policy's cost per inbound request (µs), and the time
    from a new consortium document applied on one node until it is in force on 4."""
    source_checkout()
    from interop.bench import consortium as consortium_bench

    consortium_bench.main(max(members, 1), max(rounds, 1))


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
    source_checkout()
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
    source_checkout()
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


@bench.command("media")
@click.option("--size", default=5600, type=click.IntRange(min=1), show_default=True)
@click.option("--requests", default=40, type=click.IntRange(min=1), show_default=True)
@click.option("--concurrency", default=4, type=click.IntRange(min=1), show_default=True)
@click.option("--target-mib", default=200.0, show_default=True, help="Peak RSS to stay under.")
def bench_media(size: int, requests: int, concurrency: int, target_mib: float) -> None:
    """A fresh node's RSS idle, during and after thumbnails of one large PNG at many sizes."""
    source_checkout()
    from interop.bench import media

    options = media.MediaBenchOptions(size, requests, concurrency, target_mib)
    try:
        result = media.run(options, click.echo)
    except media.BenchError as e:
        raise click.ClickException(str(e)) from None
    if not result.passed(target_mib):
        sys.exit(1)


@bench.command("sliding-sync")
@click.option("--rooms", default=500, type=click.IntRange(min=1), show_default=True)
@click.option("--samples", default=50, type=click.IntRange(min=1), show_default=True)
@click.option("--concurrency", default=8, type=click.IntRange(min=1), show_default=True)
@click.option(
    "--kinds", default="kairan,synapse", show_default=True, help="Servers: kairan, synapse."
)
@click.option("--with-synapse", is_flag=True, help="Create the Synapse virtualenv if missing.")
def bench_sliding_sync(
    rooms: int, samples: int, concurrency: int, kinds: str, with_synapse: bool
) -> None:
    """One user in many rooms: Simplified Sliding Sync first room list and incremental
    response p50/p99, Kairan against Synapse in the same run."""
    source_checkout()
    from interop.bench import sliding_sync as sss
    from interop.run import prepare_synapse

    try:
        chosen = sss.parse_kinds(kinds)
        if "synapse" in chosen:
            prepare_synapse(with_synapse)
        options = sss.SlidingBenchOptions(chosen, rooms, samples, concurrency)
        results = sss.run(options, click.echo)
    except (sss.BenchError, RuntimeError) as e:
        raise click.ClickException(str(e)) from None
    if any(r.error for r in results):
        sys.exit(1)
