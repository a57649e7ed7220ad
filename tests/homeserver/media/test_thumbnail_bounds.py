"""Thumbnails stay bounded, over real HTTP on both databases: any number of requested
sizes make at most the configured thumbnails, once, in one worker run; large images
still come out right; media GETs are rate-limited (rc_media_download)."""

from __future__ import annotations

import asyncio
import io
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from PIL import Image

from homeserver.config import Rate
from homeserver.media import thumbnail_worker
from tests.homeserver.conftest import Node, running_node
from tests.homeserver.media.test_media import (
    LEGACY,
    V1,
    assert_error,
    opened,
    thumbnail,
    upload,
)

#: Four quadrants: red, green / blue, and transparent (or white without alpha).
RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


def quadrants(size: tuple[int, int], fmt: str, mode: str = "RGB", **save: object) -> bytes:
    width, height = size
    image = Image.new(mode, size, (255, 255, 255, 0) if mode == "RGBA" else (255, 255, 255))
    image.paste(RED, (0, 0, width // 2, height // 2))
    image.paste(GREEN, (width // 2, 0, width, height // 2))
    image.paste(BLUE, (0, height // 2, width // 2, height))
    buffer = io.BytesIO()
    image.save(buffer, fmt, **save)
    return buffer.getvalue()


def close_to(pixel: object, color: tuple[int, ...], tolerance: int = 12) -> bool:
    assert isinstance(pixel, tuple)
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, color, strict=False))


def workers_runs(node: Node) -> int:
    return node.services.media._thumbnails.workers.runs


async def test_forty_sizes_make_only_the_configured_thumbnails(node: Node) -> None:
    """The issue's run, small: 40 requests of different sizes give the 5 configured
    thumbnails, made in one worker run and then reused."""
    async with node.client() as c:
        alice = await c.register("alice")
        server, media_id = await upload(alice, quadrants((2400, 1800), "PNG"), "image/png")
        requests = [(16 + 29 * i, 12 + 23 * i, ("crop", "scale")[i % 2]) for i in range(40)]
        gate = asyncio.Semaphore(4)

        async def one(width: int, height: int, method: str) -> tuple[int, int]:
            async with gate:
                return opened(await thumbnail(alice, server, media_id, width, height, method)).size

        served = await asyncio.gather(*(one(*r) for r in requests))
        configured = {(32, 32), (96, 96), (320, 240), (640, 480), (800, 600)}
        assert set(served) <= configured
        assert len(set(served)) >= 4  # the requests really did spread over the sizes
        kept = sorted(p.name for p in node.services.media.thumbnail_dir(media_id).iterdir())
        assert kept == [
            "320x240-scale.png",
            "32x32-crop.png",
            "640x480-scale.png",
            "800x600-scale.png",
            "96x96-crop.png",
        ]
        assert workers_runs(node) == 1
        # Asked again: answered from the kept files, nothing decoded.
        again = await asyncio.gather(*(one(*r) for r in requests))
        assert again == served
        assert workers_runs(node) == 1
        assert not list((node.services.config.media_path / "tmp").iterdir())


async def test_selection_follows_synapse(node: Node) -> None:
    async with node.client() as c:
        alice = await c.register("alice")
        server, media_id = await upload(alice, quadrants((1600, 1200), "PNG"), "image/png")
        for (width, height, method), expected in {
            (10, 10, "crop"): (32, 32),
            (33, 33, "crop"): (96, 96),
            (500, 500, "crop"): (96, 96),  # nothing larger has the aspect: the closest does
            # Synapse weighs the aspect first: 32x32 is as tall as asked and closer to 2:1.
            (40, 20, "crop"): (32, 32),
            (100, 100, "scale"): (320, 240),
            (320, 240, "scale"): (320, 240),
            (321, 100, "scale"): (320, 240),  # 240 is taller than asked for: it covers it
            (400, 300, "scale"): (640, 480),
            (700, 500, "scale"): (800, 600),
            (1500, 1100, "scale"): (800, 600),  # larger than every size: the largest
        }.items():
            image = opened(await thumbnail(alice, server, media_id, width, height, method))
            assert image.size == expected, (width, height, method)
        # No larger than the request: the original itself, nothing made.
        original = await thumbnail(alice, server, media_id, 1600, 1200, "crop")
        assert (
            original.body == (await alice.request("GET", f"{V1}/download/{server}/{media_id}")).body
        )


async def test_concurrent_first_requests_share_one_run(node: Node) -> None:
    async with node.client() as c:
        alice = await c.register("alice")
        server, media_id = await upload(alice, quadrants((1200, 900), "JPEG"), "image/jpeg")
        answers = await asyncio.gather(
            *(thumbnail(alice, server, media_id, 20 + 50 * i, 20 + 40 * i) for i in range(12))
        )
        assert all(a.status == 200 and a.headers["Content-Type"] == "image/jpeg" for a in answers)
        assert workers_runs(node) == 1


async def test_large_png_thumbnails_are_right(node: Node) -> None:
    """5600x5600 with transparency: shrunk in strips in the worker, colours and alpha kept."""
    async with node.client() as c:
        alice = await c.register("alice")
        data = quadrants((5600, 5600), "PNG", mode="RGBA")
        server, media_id = await upload(alice, data, "image/png")
        big = opened(await thumbnail(alice, server, media_id, 800, 600, "scale"))
        assert (big.format, big.mode, big.size) == ("PNG", "RGBA", (600, 600))
        assert close_to(big.getpixel((150, 150)), (*RED, 255))
        assert close_to(big.getpixel((450, 150)), (*GREEN, 255))
        assert close_to(big.getpixel((150, 450)), (*BLUE, 255))
        assert big.getpixel((450, 450))[3] == 0  # type: ignore[index]
        small = opened(await thumbnail(alice, server, media_id, 32, 32, "crop"))
        assert small.size == (32, 32)
        assert close_to(small.getpixel((4, 4)), (*RED, 255))
        assert close_to(small.getpixel((28, 4)), (*GREEN, 255))


async def test_large_jpeg_is_decoded_small_and_upright(node: Node) -> None:
    """4000x3000 JPEG shown rotated (EXIF 6): decoded at reduced scale, still upright."""
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    data = quadrants((4000, 3000), "JPEG", quality=95, exif=exif.tobytes())
    async with node.client() as c:
        alice = await c.register("alice")
        server, media_id = await upload(alice, data, "image/jpeg")
        thumb = opened(await thumbnail(alice, server, media_id, 640, 480, "scale"))
        # Upright 3000x4000: the configured 640x480 fits it as 360x480.
        assert thumb.size == (360, 480)
        rgb = thumb.convert("RGB")
        # Turned clockwise: red (top-left) is now top-right, blue (bottom-left) top-left.
        assert close_to(rgb.getpixel((270, 120)), RED, 30)
        assert close_to(rgb.getpixel((90, 120)), BLUE, 30)
        assert close_to(rgb.getpixel((270, 360)), GREEN, 30)


async def test_a_worker_that_dies_is_a_clear_error(
    node: Node, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A decoder crashing on hostile input takes its worker down, not the node."""
    crash = tmp_path / "crash.py"
    crash.write_text(f"import os\nos.kill(os.getpid(), {int(signal.SIGSEGV)})\n")
    async with node.client() as c:
        alice = await c.register("alice")
        server, media_id = await upload(alice, quadrants((600, 400), "PNG"), "image/png")
        monkeypatch.setattr(thumbnail_worker, "WORKER_SCRIPT", crash)
        response = await thumbnail(alice, server, media_id, 32, 32, "crop")
        assert_error(response, 400, "M_UNKNOWN")
        assert "could not be decoded" in response.body["error"]
        monkeypatch.undo()  # a sound worker again
        assert opened(await thumbnail(alice, server, media_id, 32, 32, "crop")).size == (32, 32)
        assert not list((node.services.config.media_path / "tmp").iterdir())


async def test_a_worker_that_runs_too_long_is_killed(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with node.client() as c:
        alice = await c.register("alice")
        server, media_id = await upload(alice, quadrants((600, 400), "PNG"), "image/png")
        workers = node.services.media._thumbnails.workers
        monkeypatch.setattr(workers, "timeout", 0.001)
        response = await thumbnail(alice, server, media_id, 32, 32, "crop")
        assert_error(response, 400, "M_UNKNOWN")
        assert "too long" in response.body["error"]
        assert not list((node.services.config.media_path / "tmp").iterdir())
        assert not node.services.media.thumbnail_dir(media_id).exists()


@pytest.fixture
async def limited(tmp_path: Path, db_url: str) -> AsyncIterator[Node]:
    """A node allowing 3 media GETs, then one every 100 seconds."""
    async with running_node(
        tmp_path / "limited",
        db_url,
        media_download_limit=Rate(0.01, 3),
        enable_authenticated_media=False,
    ) as node:
        yield node


async def test_media_downloads_are_rate_limited(limited: Node) -> None:
    async with limited.client() as c:
        alice = await c.register("alice")
        bob = await c.register("bob")
        server, media_id = await upload(alice, quadrants((600, 400), "PNG"), "image/png")
        download = f"{V1}/download/{server}/{media_id}"
        assert (await alice.request("GET", download)).status == 200
        assert opened(await thumbnail(alice, server, media_id, 32, 32, "crop")).size == (32, 32)
        assert (await alice.request("GET", f"{download}/plan.png")).status == 200
        for over in (
            await alice.request("GET", download),
            await thumbnail(alice, server, media_id, 96, 96, "crop"),
        ):
            assert_error(over, 429, "M_LIMIT_EXCEEDED")
            retry = over.body["retry_after_ms"]
            assert isinstance(retry, int) and 0 < retry <= 100_000
        # Per user: bob has a bucket of his own; a bad token is 401, not counted.
        assert (await bob.request("GET", download)).status == 200
        no_token = await c.request("GET", download)
        assert_error(no_token, 401, "M_MISSING_TOKEN")
        # The unauthenticated legacy endpoints count per address.
        legacy = f"{LEGACY}/thumbnail/{server}/{media_id}?width=32&height=32"
        answers = [await c.request("GET", legacy) for _ in range(4)]
        assert [a.status for a in answers] == [200, 200, 200, 429]
        assert_error(answers[3], 429, "M_LIMIT_EXCEEDED")


async def test_stopping_the_node_stops_its_workers(tmp_path: Path, db_url: str) -> None:
    async with running_node(tmp_path / "n", db_url) as node, node.client() as c:
        alice = await c.register("alice")
        server, media_id = await upload(alice, quadrants((4000, 4000), "PNG"), "image/png")
        pending = asyncio.create_task(thumbnail(alice, server, media_id, 32, 32, "crop"))
        workers = node.services.media._thumbnails.workers
        while not workers._running:  # the worker is decoding
            await asyncio.sleep(0.01)
        running = list(workers._running)
        await node.services.media.close()
        assert [await asyncio.wait_for(p.wait(), 10) for p in running] == [-signal.SIGKILL]
        assert not workers._running
        assert not node.services.media._thumbnails._making
        pending.cancel()
        await asyncio.gather(pending, return_exceptions=True)
