"""``kairan bench federation``: delivery latency, throughput and RSS across two real nodes.

For each pair A-B (``kairan-kairan``, ``kairan-synapse``, ``synapse-synapse``, ...) the
interop harness starts two fresh nodes on loopback (TLS, throwaway CA).  A user on A
creates a public room, sender users on A join it locally, a user on B joins it over
federation.  B's user then long-polls ``/sync`` without pause in the background, noting
when each message body first arrives.  Then:

1. delivery latency: one message at a time is sent on A; each sample is the time from
   starting the send to B's ``/sync`` returning it (p50/p99 of ``--latency-samples``);
2. throughput: ``--messages`` are sent by ``--senders`` concurrent senders on A as fast as A
   accepts them; the end-to-end rate is messages arrived over the time from the first send
   to the last arrival in B's ``/sync``.  Every message is counted; waiting ends when all
   arrived or nothing new arrived for ``--stall-timeout`` seconds (the count is reported);
3. RSS (VmRSS, and the peak VmHWM) of both server processes afterwards, from /proc.

Figures only: nothing here judges a time.  Black box like the rest of ``interop/``.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import secrets
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import aiohttp

from interop.client import Client, JsonDict, MatrixError
from interop.harness import Harness, HarnessError, Node, NodeKind
from interop.wait import WaitTimeout, wait_until

PAIRS: dict[str, tuple[NodeKind, NodeKind]] = {
    "kairan-kairan": ("kairan", "kairan"),
    "kairan-synapse": ("kairan", "synapse"),
    "synapse-kairan": ("synapse", "kairan"),
    "synapse-synapse": ("synapse", "synapse"),
}
DEFAULT_PAIRS = "kairan-kairan,kairan-synapse,synapse-synapse"
TARGET_RATIO = 10.0


class BenchError(Exception):
    """The benchmark cannot run at all (bad options, no Synapse); one line."""


@dataclass(frozen=True)
class FederationBenchOptions:
    pairs: tuple[str, ...]
    messages: int = 2000
    senders: int = 10
    latency_samples: int = 200
    #: Give up waiting for the throughput messages after this long without a new arrival.
    stall_timeout: float = 120.0
    #: Give up waiting for one latency sample (or the set-up) after this long.
    sample_timeout: float = 60.0
    log_level: str = "WARNING"


@dataclass
class PairResult:
    pair: str
    latencies: list[float] = field(default_factory=list)
    latency_lost: int = 0
    sent: int = 0
    accepted_seconds: float = 0.0
    arrived: int = 0
    end_to_end_seconds: float = 0.0
    limited_syncs: int = 0
    rss_kib: tuple[int, int] | None = None
    peak_kib: tuple[int, int] | None = None
    error: str = ""

    @property
    def rate(self) -> float | None:
        if self.arrived == 0 or self.end_to_end_seconds <= 0:
            return None
        return self.arrived / self.end_to_end_seconds

    @property
    def send_rate(self) -> float | None:
        if self.sent == 0 or self.accepted_seconds <= 0:
            return None
        return self.sent / self.accepted_seconds


def parse_pairs(text: str) -> tuple[str, ...]:
    """``all`` or comma-separated pair names; raises BenchError otherwise."""
    names = [p.strip() for p in text.split(",") if p.strip()]
    if names == ["all"]:
        return tuple(PAIRS)
    unknown = [n for n in names if n not in PAIRS]
    if unknown or not names:
        raise BenchError(
            f"unknown pairs {', '.join(unknown) or '(none)'}; choose from all, {', '.join(PAIRS)}"
        )
    return tuple(dict.fromkeys(names))


def percentile(samples: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0-100) of a non-empty sample."""
    ordered = sorted(samples)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def read_rss(pid: int) -> tuple[int, int] | None:
    """(VmRSS, VmHWM) in KiB from /proc/PID/status, or None if it cannot be read."""
    try:
        text = Path(f"/proc/{pid}/status").read_text(encoding="utf-8")
    except OSError:
        return None
    values: dict[str, int] = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM") and rest.split():
            values[name] = int(rest.split()[0])
    if "VmRSS" not in values:
        return None
    return values["VmRSS"], values.get("VmHWM", values["VmRSS"])


# ---------------------------------------------------------------------- B's /sync


class Arrivals:
    """B's user long-polling ``/sync`` in a loop: when each message body first arrived."""

    def __init__(self, client: Client, room_id: str, timeline_limit: int) -> None:
        self.client = client
        self.room_id = room_id
        self.filter: JsonDict = {
            "room": {
                "timeline": {"limit": timeline_limit, "types": ["m.room.message"]},
                "ephemeral": {"types": []},
                "account_data": {"types": []},
            },
            "presence": {"types": []},
            "account_data": {"types": []},
        }
        self.since: str | None = None
        self.times: dict[str, float] = {}
        self.limited = 0
        self.errors = 0
        self.last_error = ""
        self.changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        first = await self.client.sync(None, timeout_ms=0, filter_json=self.filter)
        self.since = first.get("next_batch")
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:  # ends when stop() cancels it
            try:
                response = await self.client.sync(
                    self.since, timeout_ms=30_000, filter_json=self.filter
                )
            except (MatrixError, aiohttp.ClientError, TimeoutError) as e:
                self.errors += 1
                self.last_error = repr(e)[:300]
                await asyncio.sleep(0.5)
                continue
            now = time.perf_counter()
            self.since = response.get("next_batch", self.since)
            room = response.get("rooms", {}).get("join", {}).get(self.room_id, {})
            timeline = room.get("timeline", {})
            if timeline.get("limited"):
                self.limited += 1
            for event in timeline.get("events", []):
                content = event.get("content")
                body = content.get("body") if isinstance(content, dict) else None
                if isinstance(body, str) and body not in self.times:
                    self.times[body] = now
            self.changed.set()

    async def wait_for(self, body: str, timeout: float) -> float | None:
        """The arrival time of ``body``, or None if it has not come within ``timeout``."""
        deadline = time.perf_counter() + timeout
        while body not in self.times:
            left = deadline - time.perf_counter()
            if left <= 0:
                return None
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), min(left, 1.0))
        return self.times[body]

    def count(self, prefix: str) -> tuple[int, float]:
        """How many bodies starting with ``prefix`` arrived, and when the last of them did."""
        times = [t for b, t in self.times.items() if b.startswith(prefix)]
        return len(times), max(times, default=0.0)


# ---------------------------------------------------------------------- one pair


async def _measure(
    options: FederationBenchOptions, harness: Harness, a: Node, b: Node, result: PairResult
) -> None:
    ca = harness.certs.ca
    tag = secrets.token_hex(3)
    clients: list[Client] = []

    def client(node: Node, name: str) -> Client:
        made = Client(node.base_url, ca, name=name)
        clients.append(made)
        return made

    try:
        alice = client(a, "alice")
        await alice.register(f"bench-alice-{tag}")
        senders = [client(a, f"sender{i}") for i in range(options.senders)]
        await asyncio.gather(*(s.register(f"bench-s{i}-{tag}") for i, s in enumerate(senders)))
        bob = client(b, "bob")
        await bob.register(f"bench-bob-{tag}")

        room_id = await alice.create_room(preset="public_chat", name="federation bench")
        for sender in senders:
            await sender.join(room_id)
        await bob.join(room_id, via=[a.server_name])

        async def a_sees_bob() -> bool:
            return bob.user_id in await alice.joined_members(room_id)

        await wait_until(a_sees_bob, "A to list B's user as joined", timeout=options.sample_timeout)

        limit = max(options.messages, options.latency_samples) + 100
        arrivals = Arrivals(bob, room_id, limit)
        await arrivals.start()
        try:
            # One warm-up message, not counted: the path A -> B works and is warm.
            warm = f"{tag} warm-up"
            await alice.send_text(room_id, warm)
            if await arrivals.wait_for(warm, options.sample_timeout) is None:
                raise WaitTimeout(
                    f"the warm-up message did not reach B's /sync within "
                    f"{options.sample_timeout:.0f}s (sync errors: {arrivals.errors}, "
                    f"last: {arrivals.last_error or 'none'})"
                )

            for i in range(options.latency_samples):
                body = f"{tag} lat {i}"
                start = time.perf_counter()
                await alice.send_text(room_id, body)
                arrived = await arrivals.wait_for(body, options.sample_timeout)
                if arrived is None:
                    result.latency_lost += 1
                else:
                    result.latencies.append(arrived - start)

            await _throughput(options, senders, room_id, arrivals, tag, result)
        finally:
            await arrivals.stop()
        result.limited_syncs = arrivals.limited
    finally:
        for made in clients:
            await made.close()


async def _throughput(
    options: FederationBenchOptions,
    senders: list[Client],
    room_id: str,
    arrivals: Arrivals,
    tag: str,
    result: PairResult,
) -> None:
    total = options.messages
    shares = [
        total // len(senders) + (1 if i < total % len(senders) else 0) for i in range(len(senders))
    ]
    prefix = f"{tag} tp "

    async def send_all(index: int, sender: Client) -> None:
        for j in range(shares[index]):
            await sender.send_text(room_id, f"{prefix}{index}/{j}")

    start = time.perf_counter()
    await asyncio.gather(*(send_all(i, s) for i, s in enumerate(senders)))
    result.sent = total
    result.accepted_seconds = time.perf_counter() - start

    seen, last = arrivals.count(prefix)
    progress_at = time.perf_counter()
    while seen < total:  # bounded: ends after stall_timeout without progress
        arrivals.changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(arrivals.changed.wait(), 1.0)
        now_seen, last = arrivals.count(prefix)
        if now_seen > seen:
            seen, progress_at = now_seen, time.perf_counter()
        elif time.perf_counter() - progress_at > options.stall_timeout:
            break
    result.arrived = seen
    result.end_to_end_seconds = (last - start) if seen else 0.0


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt, so the harness's ``finally`` stops every node."""

    def interrupt(signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_pair(options: FederationBenchOptions, pair: str, echo: Callable[[str], None]) -> PairResult:
    """Start two fresh nodes for ``pair``, measure, stop them (also on failure)."""
    a_kind, b_kind = PAIRS[pair]
    result = PairResult(pair)
    harness = Harness(log_level=options.log_level)
    try:
        a = harness.add(a_kind, f"A-{a_kind}")
        b = harness.add(b_kind, f"B-{b_kind}")
        started = time.monotonic()
        harness.start_all()
        echo(
            f"{pair}: nodes up in {time.monotonic() - started:.1f}s ({a.server_name} -> {b.server_name})"
        )
        try:
            asyncio.run(_measure(options, harness, a, b, result))
        finally:
            if a.pid is not None and b.pid is not None:
                rss_a, rss_b = read_rss(a.pid), read_rss(b.pid)
                if rss_a is not None and rss_b is not None:
                    result.rss_kib = (rss_a[0], rss_b[0])
                    result.peak_kib = (rss_a[1], rss_b[1])
    except (HarnessError, MatrixError, WaitTimeout, aiohttp.ClientError, TimeoutError) as e:
        result.error = f"{type(e).__name__}: {e}"
        harness.keep = True
        echo(f"{pair}: FAILED: {result.error}")
        echo(f"{pair}: data directories and logs kept in {harness.root}")
        echo(harness.logs(20))
    finally:
        harness.close()
    return result


# ---------------------------------------------------------------------- report


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def _mb(kib: int) -> str:
    return f"{kib / 1024:.0f}"


def table(results: Sequence[PairResult]) -> list[str]:
    header = (
        f"{'pair':<16} {'lat p50 ms':>10} {'lat p99 ms':>10} {'msg/s e2e':>9} "
        f"{'accepted/s':>10} {'arrived/sent':>12} {'RSS A/B MB':>11} {'peak A/B MB':>11}"
    )
    lines = [header, "-" * len(header)]
    for r in results:
        if r.error and not r.latencies and not r.sent:
            lines.append(f"{r.pair:<16} failed: {r.error[:120]}")
            continue
        p50 = _ms(percentile(r.latencies, 50)) if r.latencies else "-"
        p99 = _ms(percentile(r.latencies, 99)) if r.latencies else "-"
        rate = f"{r.rate:.1f}" if r.rate is not None else "-"
        send_rate = f"{r.send_rate:.1f}" if r.send_rate is not None else "-"
        rss = f"{_mb(r.rss_kib[0])}/{_mb(r.rss_kib[1])}" if r.rss_kib else "-"
        peak = f"{_mb(r.peak_kib[0])}/{_mb(r.peak_kib[1])}" if r.peak_kib else "-"
        lines.append(
            f"{r.pair:<16} {p50:>10} {p99:>10} {rate:>9} {send_rate:>10} "
            f"{f'{r.arrived}/{r.sent}':>12} {rss:>11} {peak:>11}"
        )
    return lines


def notes(results: Sequence[PairResult]) -> list[str]:
    out: list[str] = []
    for r in results:
        if r.latency_lost:
            out.append(f"{r.pair}: {r.latency_lost} latency samples never arrived")
        if r.sent and r.arrived < r.sent:
            out.append(f"{r.pair}: only {r.arrived} of {r.sent} messages arrived (INCOMPLETE)")
        if r.limited_syncs:
            out.append(f"{r.pair}: {r.limited_syncs} /sync responses were limited (gaps)")
        if r.error and (r.latencies or r.sent):
            out.append(f"{r.pair}: failed part-way: {r.error[:200]}")
    by_pair = {r.pair: r for r in results}
    kk, ss = by_pair.get("kairan-kairan"), by_pair.get("synapse-synapse")
    if kk is not None and ss is not None:
        if kk.rate is not None and ss.rate is not None:
            out.append(
                f"throughput kairan-kairan / synapse-synapse: {kk.rate / ss.rate:.2f}x "
                f"(target >= {TARGET_RATIO:.0f}x)"
            )
        else:
            out.append("throughput kairan-kairan / synapse-synapse: - (a pair has no figure)")
    return out


def run(options: FederationBenchOptions, echo: Callable[[str], None] = print) -> list[PairResult]:
    """Measure every pair in turn (fresh nodes each), print the table; return the results."""
    if options.senders < 1 or options.messages < 0 or options.latency_samples < 0:
        raise BenchError("--senders must be at least 1, counts not negative")
    echo(
        f"federation bench: {options.latency_samples} latency samples, {options.messages} "
        f"messages from {options.senders} concurrent senders, pairs {', '.join(options.pairs)}"
    )
    results: list[PairResult] = []
    with _sigterm_interrupts():
        for pair in options.pairs:
            results.append(run_pair(options, pair, echo))
            echo(f"{pair}: done: " + " ".join(table(results[-1:])[-1].split()[1:]))
    echo("")
    for line in table(results) + notes(results):
        echo(line)
    return results
