"""``kairan bench sliding-sync``: Simplified Sliding Sync (MSC4186) for a user in many rooms.

The interop harness starts one fresh node of each kind asked for (Kairan, Synapse) on
loopback, at the same time.  On each, alice creates ``--rooms`` rooms (named, bob invited;
bob joins and says something in each), ``--concurrency`` requests at a time.  Then, with
the servers otherwise idle and the samples of the kinds interleaved (so a burst of load on
the shared machine hits both alike), two figures, p50 and p99 of ``--samples`` each:

(a) **first room list**: alice's first request on a fresh ``conn_id`` (no ``pos``): list
    ``all`` with ranges [[0, 19]], ``timeline_limit`` 1, the modest required_state of a
    room list, and the account_data, receipts and typing extensions (what Element X's room
    list connection asks for);
(b) **incremental**: on one connection, bob sends a message in a random room; then the
    time of alice's request with ``pos`` (``timeout`` 0) until an answer holds that
    message (a request that comes back without it is counted as a miss, and the time
    goes on to the request that has it).

Printed: a table per kind (with the p50 of ``GET /account/whoami``, the floor of one
authenticated request on that server, for scale) and the ratio Kairan / Synapse of each figure (the goal: at most
1/3).  Figures only: nothing is judged.  Black box like the rest of ``interop/``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import random
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import aiohttp

from interop.client import Client, JsonDict, MatrixError
from interop.harness import Harness, HarnessError, Node, NodeKind

KINDS: tuple[NodeKind, ...] = ("kairan", "synapse")
GOAL_RATIO = 1 / 3

ROOM_LIST_REQUIRED_STATE = [
    ["m.room.name", ""],
    ["m.room.avatar", ""],
    ["m.room.topic", ""],
    ["m.room.canonical_alias", ""],
    ["m.room.encryption", ""],
    ["m.room.join_rules", ""],
    ["m.room.create", ""],
    ["m.room.member", "$ME"],
]
ROOM_LIST_EXTENSIONS: JsonDict = {
    "account_data": {"enabled": True},
    "receipts": {"enabled": True},
    "typing": {"enabled": True},
}


class BenchError(Exception):
    """The benchmark cannot run (bad options, a node that does not start); one line."""


@dataclass(frozen=True)
class SlidingBenchOptions:
    kinds: tuple[NodeKind, ...] = KINDS
    rooms: int = 500
    samples: int = 50
    #: Requests in flight at once while the rooms are made.
    concurrency: int = 8
    #: Seed of the random rooms the incremental messages go to.
    seed: int = 12
    log_level: str = "WARNING"


@dataclass
class KindResult:
    kind: NodeKind
    setup_seconds: float = 0.0
    first: list[float] = field(default_factory=list)
    incremental: list[float] = field(default_factory=list)
    #: GET /account/whoami: the server's floor for one authenticated request.
    whoami: list[float] = field(default_factory=list)
    misses: int = 0
    list_count: int | None = None
    first_rooms: int = 0
    error: str = ""


def parse_kinds(text: str) -> tuple[NodeKind, ...]:
    names = [k.strip() for k in text.split(",") if k.strip()]
    unknown = [k for k in names if k not in KINDS]
    if unknown or not names:
        raise BenchError(
            f"unknown kinds {', '.join(unknown) or '(none)'}; choose from kairan, synapse"
        )
    return tuple(k for k in KINDS if k in names)


def percentile(samples: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0-100) of a non-empty sample."""
    ordered = sorted(samples)
    return ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1]


def room_list_body(conn_id: str) -> JsonDict:
    return {
        "conn_id": conn_id,
        "lists": {
            "all": {
                "ranges": [[0, 19]],
                "timeline_limit": 1,
                "required_state": ROOM_LIST_REQUIRED_STATE,
            }
        },
        "extensions": ROOM_LIST_EXTENSIONS,
    }


def bodies_in(answer: JsonDict, room_id: str) -> list[str]:
    room = answer.get("rooms", {}).get(room_id, {})
    return [
        str(e.get("content", {}).get("body"))
        for e in room.get("timeline", [])
        if isinstance(e, dict) and isinstance(e.get("content"), dict)
    ]


class Subject:
    """One node under test: its two users and rooms."""

    def __init__(self, node: Node, harness: Harness, options: SlidingBenchOptions) -> None:
        self.node = node
        self.options = options
        ca = harness.certs.ca
        self.alice = Client(node.base_url, ca, name="alice", request_timeout=300)
        self.makers = [
            Client(node.base_url, ca, name=f"maker{i}", request_timeout=300)
            for i in range(min(options.concurrency, options.rooms))
        ]
        self.rooms: list[str] = []
        self.result = KindResult(node.kind)
        self.pos: str | None = None
        self._conn = 0
        self._sent = 0

    async def close(self) -> None:
        for client in (self.alice, *self.makers):
            await client.close()

    async def populate(self) -> None:
        """``--concurrency`` makers create the rooms, each its share one after the other,
        inviting alice, who joins; the maker says something in each.  (Distinct creators:
        one user's concurrent createRoom calls in the same millisecond can hash to one
        room ID in room version 12.)"""
        started = time.perf_counter()
        tag = secrets.token_hex(3)
        await self.alice.register(f"bench-alice-{tag}")
        makers = self.makers
        await asyncio.gather(*(m.register(f"bench-maker{i}-{tag}") for i, m in enumerate(makers)))
        rooms: dict[int, str] = {}

        async def share(index: int, maker: Client) -> None:
            for i in range(index, self.options.rooms, len(makers)):
                room_id = await maker.create_room(
                    name=f"bench room {i}", preset="private_chat", invite=[self.alice.user_id]
                )
                await self.alice.join(room_id)
                await maker.send_text(room_id, f"hello from {maker.name} in room {i}")
                rooms[i] = room_id

        await asyncio.gather(*(share(i, m) for i, m in enumerate(makers)))
        self.rooms = [rooms[i] for i in range(self.options.rooms)]
        self.result.setup_seconds = time.perf_counter() - started

    async def first_room_list(self) -> float:
        """One first request on a fresh connection; its time."""
        self._conn += 1
        body = room_list_body(f"bench-first-{self._conn}")
        start = time.perf_counter()
        answer = await self.alice.sliding_sync(body, timeout_ms=0)
        elapsed = time.perf_counter() - start
        self.result.list_count = answer.get("lists", {}).get("all", {}).get("count")
        self.result.first_rooms = len(answer.get("rooms", {}))
        return elapsed

    async def whoami(self) -> float:
        start = time.perf_counter()
        await self.alice.request("GET", "/account/whoami")
        return time.perf_counter() - start

    async def open_incremental(self) -> None:
        answer = await self.alice.sliding_sync(room_list_body("bench-incremental"), timeout_ms=0)
        self.pos = str(answer["pos"])

    async def incremental(self, index: int) -> float:
        """The maker of room ``index`` talks there; the time until alice's ``pos`` request
        returns it."""
        self._sent += 1
        marker = f"incremental {self._sent} {secrets.token_hex(3)}"
        room_id = self.rooms[index]
        await self.makers[index % len(self.makers)].send_text(room_id, marker)
        body = room_list_body("bench-incremental")
        start = time.perf_counter()
        while True:
            answer = await self.alice.sliding_sync(body, pos=self.pos, timeout_ms=0)
            self.pos = str(answer["pos"])
            if marker in bodies_in(answer, room_id):
                return time.perf_counter() - start
            self.result.misses += 1
            if time.perf_counter() - start > 30:
                raise BenchError(f"{self.node.kind}: the message never came back in 30 s")


async def _measure(subjects: list[Subject], options: SlidingBenchOptions) -> None:
    """Populate every node at once, then interleave the samples; a node that fails is
    marked (its error kept) and left out of the rest."""

    async def guarded(subject: Subject, step: Callable[[], Awaitable[object]]) -> None:
        if subject.result.error:
            return
        try:
            await step()
        except (MatrixError, BenchError, aiohttp.ClientError, TimeoutError) as e:
            subject.result.error = f"{type(e).__name__}: {e}"

    await asyncio.gather(*(guarded(s, s.populate) for s in subjects))
    for s in subjects:
        await guarded(s, s.first_room_list)  # warm-up, not counted
        await guarded(s, s.open_incremental)

    async def first(s: Subject) -> None:
        s.result.first.append(await s.first_room_list())

    async def whoami(s: Subject) -> None:
        s.result.whoami.append(await s.whoami())

    async def incremental(s: Subject, pick: int) -> None:
        s.result.incremental.append(await s.incremental(pick))

    rnd = random.Random(options.seed)
    for _ in range(options.samples):
        for s in subjects:
            await guarded(s, functools.partial(whoami, s))
    for _ in range(options.samples):
        for s in subjects:
            await guarded(s, functools.partial(first, s))
    for _ in range(options.samples):
        pick = rnd.randrange(options.rooms)
        for s in subjects:
            await guarded(s, functools.partial(incremental, s, pick))


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def table(results: Sequence[KindResult], options: SlidingBenchOptions) -> list[str]:
    header = (
        f"{'server':<8} {'first p50 ms':>12} {'first p99 ms':>12} {'incr p50 ms':>11} "
        f"{'incr p99 ms':>11} {'whoami p50':>10} {'misses':>6} {'count':>5} {'rooms':>5} {'setup s':>7}"
    )
    lines = [header, "-" * len(header)]
    for r in results:
        if not r.first or not r.incremental or not r.whoami:
            lines.append(f"{r.kind:<8} failed: {r.error[:160]}")
            continue
        lines.append(
            f"{r.kind:<8} {_ms(percentile(r.first, 50)):>12} {_ms(percentile(r.first, 99)):>12} "
            f"{_ms(percentile(r.incremental, 50)):>11} {_ms(percentile(r.incremental, 99)):>11} "
            f"{_ms(percentile(r.whoami, 50)):>10} {r.misses:>6} {r.list_count!s:>5} {r.first_rooms:>5} {r.setup_seconds:>7.1f}"
        )
    by_kind = {r.kind: r for r in results}
    k, s = by_kind.get("kairan"), by_kind.get("synapse")
    if k and s and k.first and s.first and k.incremental and s.incremental:
        lines.append("")
        lines.append(f"kairan / synapse (goal <= {GOAL_RATIO:.2f}):")
        for label, ks, ss in (("first", k.first, s.first), ("incr", k.incremental, s.incremental)):
            ratios = [f"{p} {percentile(ks, p) / percentile(ss, p):.2f}" for p in (50, 99)]
            lines.append(f"  {label:<6} " + ", ".join(f"p{r}" for r in ratios))
    return lines


def run(options: SlidingBenchOptions, echo: Callable[[str], None] = print) -> list[KindResult]:
    """Start the nodes, populate, measure, stop; print the table; return the results."""
    if options.rooms < 1 or options.samples < 1 or options.concurrency < 1:
        raise BenchError("--rooms, --samples and --concurrency must be at least 1")
    echo(
        f"sliding sync bench: {options.rooms} rooms (2 members, a message each), "
        f"{options.samples} samples, servers {', '.join(options.kinds)}"
    )
    harness = Harness(log_level=options.log_level)
    subjects: list[Subject] = []
    try:
        nodes = [harness.add(kind, f"{kind}") for kind in options.kinds]
        harness.start_all()

        async def main() -> None:
            subjects.extend(Subject(node, harness, options) for node in nodes)
            try:
                await _measure(subjects, options)
            finally:
                for s in subjects:
                    await s.close()

        asyncio.run(main())
        for s in subjects:
            if s.result.error:
                harness.keep = True
                echo(f"{s.node.kind}: FAILED: {s.result.error}")
                echo(s.node.log_tail(20))
        if harness.keep:
            echo(f"data directories and logs kept in {harness.root}")
    except (HarnessError, MatrixError, BenchError, aiohttp.ClientError, TimeoutError) as e:
        message = f"{type(e).__name__}: {e}"
        for s in subjects:
            s.result.error = s.result.error or message
        harness.keep = True
        echo(f"FAILED: {message}")
        echo(f"data directories and logs kept in {harness.root}")
        with contextlib.suppress(Exception):
            echo(harness.logs(20))
        if not subjects:
            raise BenchError(message) from e
    finally:
        harness.close()
    results = [s.result for s in subjects]
    echo("")
    for line in table(results, options):
        echo(line)
    return results
