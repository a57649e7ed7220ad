"""``kairan bench media``: the memory a thumbnail run costs a real node.

The interop harness starts a fresh Kairan node (``python -m cli.main serve``, TLS,
throwaway CA) as a process of its own.  A user uploads one large PNG (5600x5600 by
default, a few hundred KB: flat shapes compress well, decoded they are ~120 MiB of RGBA),
then asks for thumbnails of it at ``--requests`` different sizes (both methods,
``--concurrency`` at a time).  While that runs the node's VmRSS is sampled from /proc
(every 10 ms), and with it the RSS of any process the node started (a thumbnail worker).

Printed: the node's RSS idle (after the upload), its peak during the run (sampled, and
the kernel's VmHWM), after the run and after a short settle; the peak of its child
processes; the statuses of the answers and the distinct thumbnail sizes served.  The last
line compares the node's peak with ``--target-mib`` (PASS/FAIL): a figure for the operator,
not a test assertion.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import random
import secrets
import ssl
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from interop.bench.federation import read_rss
from interop.client import Client, MatrixError
from interop.harness import Harness, HarnessError, Node

DEFAULT_TARGET_MIB = 200.0
SAMPLE_SECONDS = 0.01


class BenchError(Exception):
    """The benchmark cannot run; one line."""


@dataclass(frozen=True)
class MediaBenchOptions:
    #: Width and height of the uploaded PNG.
    size: int = 5600
    #: Thumbnail requests, each for a different width/height/method.
    requests: int = 40
    #: Requests in flight at once.
    concurrency: int = 4
    #: The node's peak RSS (MiB) the run should stay under.
    target_mib: float = DEFAULT_TARGET_MIB
    #: Seconds to wait after the run before the last RSS reading.
    settle: float = 2.0
    log_level: str = "WARNING"
    #: Changes to the node's kairan.yaml (top-level keys), e.g. to compare settings.
    config: dict[str, Any] = field(default_factory=dict)


@dataclass
class MediaBenchResult:
    png_bytes: int = 0
    idle_kib: int = 0
    peak_kib: int = 0
    hwm_kib: int = 0
    after_kib: int = 0
    settled_kib: int = 0
    children_peak_kib: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    sizes: set[tuple[int, int]] = field(default_factory=set)
    seconds: float = 0.0
    hwm_reset: bool = False

    def node_peak_kib(self) -> int:
        """The node's peak over the run: sampled, settled, and the kernel's if reset."""
        return max(self.peak_kib, self.settled_kib, self.hwm_kib if self.hwm_reset else 0)

    def passed(self, target_mib: float) -> bool:
        return self.node_peak_kib() / 1024 < target_mib


def big_png(size: int, shapes: int = 500, seed: int = 7) -> bytes:
    """A ``size`` x ``size`` RGB PNG of flat shapes (small on disk, large decoded)."""
    from PIL import Image, ImageDraw  # the benchmark's own use; the node is a black box

    image = Image.new("RGB", (size, size), (235, 240, 245))
    draw = ImageDraw.Draw(image)
    rnd = random.Random(seed)
    scale = size / 5600
    for i in range(shapes):
        x, y = rnd.randrange(size), rnd.randrange(size)
        w, h = int(rnd.randrange(40, 900) * scale) + 1, int(rnd.randrange(40, 900) * scale) + 1
        fill = (rnd.randrange(256), rnd.randrange(256), rnd.randrange(256))
        shape = draw.ellipse if i % 2 else draw.rectangle
        shape((x, y, x + w, y + h), fill=fill, outline=(0, 0, 0), width=4)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def requested_sizes(count: int, seed: int = 40) -> list[tuple[int, int, str]]:
    """``count`` different (width, height, method) requests, small to large."""
    rnd = random.Random(seed)
    seen: set[tuple[int, int, str]] = set()
    out: list[tuple[int, int, str]] = []
    while len(out) < count:
        width = rnd.randrange(16, 1200)
        height = rnd.randrange(16, 1200)
        method = "crop" if len(out) % 2 else "scale"
        if (width, height, method) not in seen:
            seen.add((width, height, method))
            out.append((width, height, method))
    return out


def children(pid: int) -> list[int]:
    """The processes ``pid`` started (and theirs), from /proc/*/task/*/children."""
    found: list[int] = []
    pending = [pid]
    while pending:
        parent = pending.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            with contextlib.suppress(OSError, ValueError):
                kids = [int(k) for k in (task / "children").read_text().split()]
                found += kids
                pending += kids
    return found


class Sampler:
    """Polls the node's RSS (and its children's) until stopped; keeps the peaks."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0
        self.children_peak = 0
        self._task: asyncio.Task[None] | None = None

    async def _loop(self) -> None:
        while True:
            own = read_rss(self.pid)
            if own is not None:
                self.peak = max(self.peak, own[0])
            kids = sum((read_rss(k) or (0, 0))[0] for k in children(self.pid))
            self.children_peak = max(self.children_peak, kids)
            await asyncio.sleep(SAMPLE_SECONDS)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


async def _measure(
    options: MediaBenchOptions, harness: Harness, node: Node, result: MediaBenchResult
) -> None:
    assert node.pid is not None
    pid = node.pid
    png = big_png(options.size)
    result.png_bytes = len(png)
    async with Client(node.base_url, harness.certs.ca, name="media") as user:
        await user.register(f"bench-media-{secrets.token_hex(3)}")
        headers = {"Authorization": f"Bearer {user.access_token}"}
        tls = ssl.create_default_context(cafile=str(harness.certs.ca))
        connector = aiohttp.TCPConnector(ssl=tls, limit=options.concurrency)
        timeout = aiohttp.ClientTimeout(total=300)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
            async with http.post(
                node.base_url + "/_matrix/media/v3/upload",
                data=png,
                headers={**headers, "Content-Type": "image/png"},
            ) as response:
                body = await response.json()
                if response.status != 200:
                    raise BenchError(f"upload answered {response.status}: {body}")
            server_name, media_id = body["content_uri"].removeprefix("mxc://").split("/", 1)
            await asyncio.sleep(1.0)
            idle = read_rss(pid)
            if idle is None:
                raise BenchError("the node exited")
            result.idle_kib = idle[0]
            # The peak so far is the registration's password hash (argon2: 64 MiB): start
            # the kernel's high-water mark again, for the run alone.
            result.hwm_reset = _reset_hwm(pid)

            sampler = Sampler(pid)
            sampler.start()
            slots = asyncio.Semaphore(options.concurrency)
            path = f"/_matrix/client/v1/media/thumbnail/{server_name}/{media_id}"

            async def one(width: int, height: int, method: str) -> None:
                params = {"width": str(width), "height": str(height), "method": method}
                async with (
                    slots,
                    http.get(node.base_url + path, params=params, headers=headers) as answer,
                ):
                    data = await answer.read()
                    result.statuses[answer.status] += 1
                    if answer.status == 200:
                        result.sizes.add(_dimensions(data))

            started = time.monotonic()
            try:
                await asyncio.gather(*(one(*s) for s in requested_sizes(options.requests)))
            finally:
                result.seconds = time.monotonic() - started
                await sampler.stop()
            after = read_rss(pid) or (0, 0)
            result.after_kib, result.hwm_kib = after
            result.peak_kib = max(sampler.peak, after[0])
            result.children_peak_kib = sampler.children_peak
            await asyncio.sleep(options.settle)
            result.settled_kib = (read_rss(pid) or (0, 0))[0]


def _reset_hwm(pid: int) -> bool:
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5", encoding="ascii")
    except OSError:
        return False
    return True


def _dimensions(data: bytes) -> tuple[int, int]:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return image.size


def _mib(kib: int) -> str:
    return f"{kib / 1024:.1f} MiB"


def report(options: MediaBenchOptions, result: MediaBenchResult) -> list[str]:
    statuses = ", ".join(f"{n} x {s}" for s, n in sorted(result.statuses.items()))
    served = ", ".join(f"{w}x{h}" for w, h in sorted(result.sizes))
    verdict = "PASS" if result.passed(options.target_mib) else "FAIL"
    since = "(since the run began)" if result.hwm_reset else "(since the node started)"
    return [
        f"png: {options.size}x{options.size}, {result.png_bytes / 1024:.0f} KiB",
        f"thumbnail requests: {sum(result.statuses.values())} in {result.seconds:.2f} s "
        f"({options.concurrency} at a time): {statuses}",
        f"distinct thumbnails served: {len(result.sizes)} ({served})",
        f"node RSS idle: {_mib(result.idle_kib)}",
        f"node RSS peak during the run: {_mib(result.peak_kib)} sampled, "
        f"VmHWM {_mib(result.hwm_kib)} {since}",
        f"node RSS after the run: {_mib(result.after_kib)}, "
        f"after {options.settle:.0f} s: {_mib(result.settled_kib)}",
        f"child processes' RSS peak: {_mib(result.children_peak_kib)}",
        f"{verdict}: node peak {_mib(result.node_peak_kib())} "
        f"(target < {options.target_mib:.0f} MiB)",
    ]


@contextlib.contextmanager
def _node(options: MediaBenchOptions) -> Iterator[tuple[Harness, Node]]:
    harness = Harness(log_level=options.log_level)
    try:
        node = harness.add_kairan("media")
        config_path = node.directory / "kairan.yaml"
        config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
        config.update(options.config)
        config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        harness.start(node)
        yield harness, node
    except BaseException:
        harness.keep = True
        raise
    finally:
        harness.close()


def run(options: MediaBenchOptions, echo: Callable[[str], None] = print) -> MediaBenchResult:
    """Start a node, measure, stop it; print the figures with ``echo``."""
    if options.size < 1 or options.requests < 1 or options.concurrency < 1:
        raise BenchError("--size, --requests and --concurrency must be at least 1")
    result = MediaBenchResult()
    try:
        with _node(options) as (harness, node):
            echo(f"media bench: node {node.server_name}, pid {node.pid}")
            try:
                asyncio.run(_measure(options, harness, node, result))
            except (MatrixError, aiohttp.ClientError, TimeoutError) as e:
                echo(harness.logs(20))
                raise BenchError(f"{type(e).__name__}: {e}") from e
    except HarnessError as e:
        raise BenchError(str(e)) from e
    for line in report(options, result):
        echo(line)
    return result
