"""Worker processes that decode images: thumbnailer.py run as a script, one per job.

A decoded image takes up to 4 bytes a pixel (a 5600x5600 PNG of a few hundred KB is
120 MiB decoded), and memory the node's own allocator gets back is rarely returned to the
system.  So the node never decodes an image itself: each job (all the thumbnails of one
image) runs in a fresh process, which takes the memory with it when it exits.  A decoder
that crashes on hostile input takes only its worker down, too.

At most ``processes`` workers run at once, and together they decode at most
``pixel_budget`` pixels (an image larger than the budget runs alone), so the machine's
memory for thumbnails stays bounded however many requests arrive.  A worker that runs
longer than ``timeout`` seconds is killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from homeserver.media import thumbnailer
from homeserver.media.thumbnailer import ImageTooLarge, Job, SourceInfo, ThumbnailError

log = logging.getLogger(__name__)

WORKER_SCRIPT = Path(thumbnailer.__file__).resolve()
#: Runs WORKER_SCRIPT as ``__main__`` with the node's import path (Pillow wherever the node
#: finds it: a virtualenv, the user's site-packages, PYTHONPATH).
_BOOTSTRAP = (
    "import json, runpy, sys; sys.path[:] = json.loads(sys.argv[2]); "
    "runpy.run_path(sys.argv[1], run_name='__main__')"
)
MAX_WORKERS = 2
WORKER_TIMEOUT_S = 120.0


class PixelBudget:
    """Decoded pixels in flight, at most ``total`` (a larger job waits until it is alone)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.free = total
        self._waiters: list[asyncio.Future[None]] = []

    @contextlib.asynccontextmanager
    async def take(self, pixels: int) -> AsyncIterator[None]:
        pixels = min(pixels, self.total)
        while self.free < pixels:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                self._waiters.remove(waiter)
        self.free -= pixels
        try:
            yield
        finally:
            self.free += pixels
            for waiter in self._waiters:  # each looks again at what is free
                if not waiter.done():
                    waiter.set_result(None)


class ThumbnailWorkers:
    def __init__(
        self,
        tmp_dir: Path,
        *,
        max_pixels: int = thumbnailer.MAX_PIXELS,
        processes: int = MAX_WORKERS,
        pixel_budget: int = thumbnailer.MAX_PIXELS,
        timeout: float = WORKER_TIMEOUT_S,
    ) -> None:
        #: The workers write here; the caller moves the thumbnails into place.
        self.tmp_dir = tmp_dir
        self.max_pixels = max_pixels
        self.timeout = timeout
        self._slots = asyncio.Semaphore(processes)
        self._budget = PixelBudget(pixel_budget)
        self._running: set[asyncio.subprocess.Process] = set()
        #: Worker runs so far (the tests count them).
        self.runs = 0

    async def render(self, source: Path, info: SourceInfo, jobs: list[Job], out_type: str) -> Path:
        """Write ``jobs`` (thumbnails of the image at ``source``, which ``info`` describes)
        into a new directory under ``tmp_dir``; the caller moves them and removes it."""
        out_dir = self.tmp_dir / f"thumbnails-{secrets.token_hex(8)}"
        await asyncio.to_thread(out_dir.mkdir, parents=True)
        job = {
            "source": str(source),
            "size": [info.width, info.height],
            "out_type": out_type,
            "out_dir": str(out_dir),
            "max_pixels": self.max_pixels,
            "jobs": [
                {"file": j.file, "width": j.width, "height": j.height, "box": list(j.box)}
                for j in jobs
            ],
        }
        try:
            async with self._slots, self._budget.take(info.pixels):
                answer = await self._run(job)
            if answer.get("ok") is not True:
                message = str(answer.get("message") or "The image could not be decoded")
                if answer.get("error") == "too_large":
                    raise ImageTooLarge(message)
                raise ThumbnailError(message)
        except BaseException:
            await asyncio.to_thread(shutil.rmtree, out_dir, True)
            raise
        return out_dir

    async def _run(self, job: dict[str, object]) -> dict[str, object]:
        self.runs += 1
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-I",  # nothing from the environment; the node's own import path, as given
            "-c",
            _BOOTSTRAP,
            str(WORKER_SCRIPT),
            json.dumps(sys.path),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        self._running.add(process)
        try:
            out, err = await asyncio.wait_for(
                process.communicate(json.dumps(job).encode()), self.timeout
            )
        except TimeoutError:
            log.warning("thumbnail worker for %s killed after %.0f s", job["source"], self.timeout)
            raise ThumbnailError("The image took too long to thumbnail") from None
        finally:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
            self._running.discard(process)
        try:
            answer = json.loads(out)
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            tail = err.decode("utf-8", "replace").strip().splitlines()[-3:]
            log.warning(
                "thumbnail worker for %s failed (exit status %s): %s",
                job["source"],
                process.returncode,
                " / ".join(tail) or "no output",
            )
            raise ThumbnailError("The image could not be decoded")
        return answer

    async def close(self) -> None:
        """Kill the workers still running (the node is stopping)."""
        for process in list(self._running):
            with contextlib.suppress(ProcessLookupError):
                process.kill()
        for process in list(self._running):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(process.wait(), 5)
