"""The content repository over real HTTP: uploads, downloads, thumbnails, errors."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import io
import os
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import pytest
from aiohttp import web
from PIL import Image
from sqlalchemy import select
from yarl import URL

from homeserver.media import thumbnails
from homeserver.media.service import MAX_PENDING_PER_USER
from homeserver.node.app import build_services, make_app
from homeserver.storage import media as media_store
from homeserver.storage import schema
from tests.homeserver.client import Client, Response, User
from tests.homeserver.conftest import Node, running_node, start_node, stop_node
from tests.homeserver.openapi import ClientServerSpec, conforms

UPLOAD = "/_matrix/media/v3/upload"
V1 = "/_matrix/client/v1/media"
LEGACY = "/_matrix/media/v3"
MXC = re.compile(r"mxc://([^/]+)/([A-Za-z0-9_-]+)")


@pytest.fixture
async def small_node(tmp_path: Path, db_url: str) -> AsyncIterator[Node]:
    """A node that accepts uploads of at most 1000 bytes."""
    async with running_node(tmp_path / "small", db_url, max_upload_bytes=1000) as started:
        yield started


def image_bytes(
    size: tuple[int, int], fmt: str, mode: str = "RGB", color: Any = (200, 30, 30), **save: Any
) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, color).save(buffer, fmt, **save)
    return buffer.getvalue()


def three_bands(size: tuple[int, int]) -> bytes:
    """A PNG whose left, middle and right thirds are red, green and blue."""
    width, height = size
    image = Image.new("RGB", size, (0, 255, 0))
    image.paste((255, 0, 0), (0, 0, width // 3, height))
    image.paste((0, 0, 255), (width - width // 3, 0, width, height))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


async def upload(
    user: User, data: bytes, content_type: str | None = None, filename: str | None = None
) -> tuple[str, str]:
    """Upload; the (server name, media ID) of the returned mxc URI."""
    headers = {"Content-Type": content_type} if content_type else None
    params = {"filename": filename} if filename is not None else None
    body = await user.ok("POST", UPLOAD, data=data, headers=headers, params=params)
    match = MXC.fullmatch(body["content_uri"])
    assert match, body
    return match.group(1), match.group(2)


def opened(response: Response) -> Image.Image:
    assert response.status == 200, response
    assert isinstance(response.body, bytes)
    image = Image.open(io.BytesIO(response.body))
    image.load()
    return image


async def thumbnail(
    user: User, server: str, media_id: str, width: Any, height: Any, method: str | None = None
) -> Response:
    params = {"width": str(width), "height": str(height)}
    if method:
        params["method"] = method
    return await user.request("GET", f"{V1}/thumbnail/{server}/{media_id}", params=params)


def assert_error(response: Response, status: int, errcode: str) -> None:
    assert response.status == status, response
    assert isinstance(response.body, dict), response
    assert response.body["errcode"] == errcode, response
    assert isinstance(response.body["error"], str) and response.body["error"]


# ---------------------------------------------------------------- upload and download


async def test_bytes_round_trip_and_safe_headers(node: Node, client: Client) -> None:
    alice = await client.register("alice")
    data = os.urandom(200_000)  # more than one read chunk
    server, media_id = await upload(alice, data, "application/octet-stream")
    assert server == node.server_name
    assert len(media_id) >= 16

    got = await alice.request("GET", f"{V1}/download/{server}/{media_id}")
    assert got.status == 200
    assert got.body == data
    assert got.headers["Content-Type"] == "application/octet-stream"
    # Not a safe type to show inline, and no file name was given.
    assert got.headers["Content-Disposition"] == "attachment"
    assert got.headers["X-Content-Type-Options"] == "nosniff"
    assert got.headers["Content-Security-Policy"].startswith("sandbox;")
    assert "default-src 'none'" in got.headers["Content-Security-Policy"]
    assert got.headers["Cross-Origin-Resource-Policy"] == "cross-origin"

    # The row and the file agree; nothing is left in tmp/.
    async with node.services.db.read() as conn:
        record = await media_store.get_media(conn, media_id)
    assert record is not None and not record.pending
    assert record.user_id == alice.user_id and record.size == len(data)
    assert record.sha256 == hashlib.sha256(data).hexdigest()
    path = node.services.media.content_path(media_id)
    assert path.read_bytes() == data
    assert list((node.services.config.media_path / "tmp").iterdir()) == []


async def test_png_and_jpeg_round_trip(node: Node, client: Client) -> None:
    alice = await client.register("alice")
    for fmt, content_type in (("PNG", "image/png"), ("JPEG", "image/jpeg")):
        data = image_bytes((120, 80), fmt)
        server, media_id = await upload(alice, data, content_type, f"photo.{fmt.lower()}")
        got = await alice.request("GET", f"{V1}/download/{server}/{media_id}")
        assert got.body == data
        assert got.headers["Content-Type"] == content_type
        assert got.headers["Content-Disposition"] == f'inline; filename="photo.{fmt.lower()}"'
        image = opened(got)
        assert (image.format, image.size) == (fmt, (120, 80))


async def test_upload_defaults_and_unsafe_types(node: Node, client: Client) -> None:
    alice = await client.register("alice")
    # No Content-Type at all: stored as application/octet-stream (spec 1.12 default).
    response = await alice.client.session.post(
        node.base_url + UPLOAD,
        data=b"",
        headers={"Authorization": f"Bearer {alice.token}", "Content-Type": ""},
    )
    assert response.status == 200
    uri = (await response.json())["content_uri"]
    match = MXC.fullmatch(uri)
    assert match
    got = await alice.request("GET", f"{V1}/download/{match.group(1)}/{match.group(2)}")
    assert got.status == 200 and got.body == b""
    assert got.headers["Content-Type"] == "application/octet-stream"

    # HTML keeps its type but is never inline (and the CSP sandboxes it anyway).
    server, media_id = await upload(alice, b"<script>alert(1)</script>", "text/html", "x.html")
    got = await alice.request("GET", f"{V1}/download/{server}/{media_id}")
    assert got.headers["Content-Type"] == "text/html"
    assert got.headers["Content-Disposition"] == 'attachment; filename="x.html"'
    # A SVG image is not on the inline list either.
    server, media_id = await upload(alice, b"<svg/>", "image/svg+xml")
    got = await alice.request("GET", f"{V1}/download/{server}/{media_id}")
    assert got.headers["Content-Disposition"] == "attachment"


async def test_japanese_file_names_in_content_disposition(node: Node, client: Client) -> None:
    alice = await client.register("alice")
    name = "防災訓練 2026年度（案）.pdf"
    server, media_id = await upload(alice, b"%PDF-1.4 test", "application/pdf", name)
    got = await alice.request("GET", f"{V1}/download/{server}/{media_id}")
    disposition = got.headers["Content-Disposition"]
    # RFC 6266 / RFC 5987: only ASCII in the header, the name as percent-encoded UTF-8.
    assert disposition.isascii()
    assert disposition.startswith("attachment; filename*=utf-8''")
    assert unquote(disposition.split("''", 1)[1], encoding="utf-8") == name

    # The file name in the path overrides the uploaded one.
    override = "議事録.pdf"
    got = await alice.request("GET", f"{V1}/download/{server}/{media_id}/{quote(override)}")
    assert got.status == 200 and got.body == b"%PDF-1.4 test"
    assert got.headers["Content-Disposition"] == (
        "attachment; filename*=utf-8''" + quote(override, safe="")
    )
    # ASCII names with quotes or backslashes are percent-encoded too, never half-quoted.
    server, media_id = await upload(alice, b"a,b\n", "text/csv", 'say "hi"\\.csv')
    got = await alice.request("GET", f"{V1}/download/{server}/{media_id}")
    disposition = got.headers["Content-Disposition"]
    assert disposition.startswith("inline; filename*=utf-8''")
    assert unquote(disposition.split("''", 1)[1]) == 'say "hi"\\.csv'


async def _legacy_answers(client: Client, server: str, media_id: str) -> list[Response]:
    answers = []
    for prefix in (LEGACY, "/_matrix/media/r0"):
        answers.append(await client.request("GET", f"{prefix}/download/{server}/{media_id}"))
        answers.append(
            await client.request(
                "GET",
                f"{prefix}/thumbnail/{server}/{media_id}",
                params={"width": "100", "height": "100", "method": "scale"},
            )
        )
    return answers


async def test_legacy_endpoints_frozen_by_default(node: Node, client: Client) -> None:
    """As Synapse with enable_authenticated_media (its default): the unauthenticated download
    and thumbnail endpoints answer 404 M_NOT_FOUND for media stored while it is on."""
    assert node.services.config.enable_authenticated_media
    alice = await client.register("alice")
    server, media_id = await upload(alice, image_bytes((400, 300), "PNG"), "image/png")
    created = await alice.ok("POST", "/_matrix/media/v1/create")
    later_id = created["content_uri"].rsplit("/", 1)[1]
    await alice.ok(
        "PUT",
        f"{LEGACY}/upload/{server}/{later_id}",
        data=image_bytes((40, 30), "PNG"),
        headers={"Content-Type": "image/png"},
    )
    for mid in (media_id, later_id):
        for answer in await _legacy_answers(client, server, mid):
            assert_error(answer, 404, "M_NOT_FOUND")
        got = await alice.request("GET", f"{V1}/download/{server}/{mid}")
        assert got.status == 200
    # Uploads and the configuration stay where they were.
    assert (await alice.request("GET", f"{LEGACY}/config")).status == 200


async def test_legacy_endpoints_serve_media_from_before_the_freeze(
    tmp_path: Path, db_url: str
) -> None:
    """Media uploaded while enable_authenticated_media was off is still served at the legacy
    endpoints once it is turned on; media uploaded afterwards is not."""
    started, runner = await start_node(tmp_path / "n", db_url, enable_authenticated_media=False)
    data = image_bytes((400, 300), "PNG")
    try:
        async with started.client() as client:
            alice = await client.register("alice")
            server, old_id = await upload(alice, data, "image/png", "地図.png")
            for prefix in (LEGACY, "/_matrix/media/r0"):
                got = await client.request("GET", f"{prefix}/download/{server}/{old_id}")
                assert got.status == 200 and got.body == data
                assert got.headers["Content-Disposition"] == "inline; filename*=utf-8''" + quote(
                    "地図.png"
                )
            answers = await _legacy_answers(client, server, old_id)
            assert [a.status for a in answers] == [200] * 4
            assert opened(answers[1]).size == (320, 240)
        # The same node, its directory and database, restarted with the default setting.
        config = dataclasses.replace(started.services.config, enable_authenticated_media=True)
        await stop_node(started, runner)
        started.services = await build_services(config, fast_passwords=True)
        runner = web.AppRunner(make_app(started.services))
        await runner.setup()
        port = int(started.server_name.rsplit(":", 1)[1])
        await web.TCPSite(runner, "127.0.0.1", port).start()
        async with started.client() as client:
            alice = User(client, alice.user_id, alice.token, alice.device_id)
            answers = await _legacy_answers(client, server, old_id)
            assert [a.status for a in answers] == [200] * 4
            assert answers[0].body == data
            _, new_id = await upload(alice, data, "image/png")
            for answer in await _legacy_answers(client, server, new_id):
                assert_error(answer, 404, "M_NOT_FOUND")
    finally:
        await stop_node(started, runner)


async def test_authenticated_endpoints_need_a_token(node: Node, client: Client) -> None:
    alice = await client.register("alice")
    server, media_id = await upload(alice, image_bytes((64, 64), "PNG"), "image/png")
    for path, params in (
        (f"{V1}/download/{server}/{media_id}", None),
        (f"{V1}/download/{server}/{media_id}/name.png", None),
        (f"{V1}/thumbnail/{server}/{media_id}", {"width": "32", "height": "32"}),
        (f"{V1}/config", None),
    ):
        assert_error(await client.request("GET", path, params=params), 401, "M_MISSING_TOKEN")
        bad = await client.request("GET", path, params=params, token="not-a-token")
        assert_error(bad, 401, "M_UNKNOWN_TOKEN")
    assert_error(await client.request("POST", UPLOAD, data=b"x"), 401, "M_MISSING_TOKEN")


async def test_unknown_and_remote_media_are_not_found(node: Node, client: Client) -> None:
    alice = await client.register("alice")
    for server, media_id in (
        (node.server_name, "doesNotExist123"),
        (node.server_name, "bad.id"),  # outside the spec's media ID alphabet
        ("not a server", "AbCdEf123456"),  # not a server name: never fetched
        ("127.0.0.1:1", "bad.id"),  # remote, but not a media ID: never fetched
    ):
        for path in (
            f"{V1}/download/{server}/{media_id}",
            f"{LEGACY}/download/{server}/{media_id}",
        ):
            assert_error(await alice.request("GET", path), 404, "M_NOT_FOUND")
        assert_error(await thumbnail(alice, server, media_id, 32, 32), 404, "M_NOT_FOUND")
    # Remote media is fetched over federation (authenticated endpoints only): a server that
    # cannot be reached is a 502; the legacy endpoints serve only what is cached already.
    assert_error(await alice.request("GET", f"{V1}/download/127.0.0.1:1/AbCd"), 502, "M_UNKNOWN")
    assert_error(await thumbnail(alice, "127.0.0.1:1", "AbCdEf123456", 32, 32), 502, "M_UNKNOWN")
    legacy = await alice.request("GET", f"{LEGACY}/download/127.0.0.1:1/AbCd")
    assert_error(legacy, 404, "M_NOT_FOUND")
    # Traversal attempts never reach the file system.
    traversal = await alice.request(
        "GET", f"{V1}/download/{node.server_name}/..%2F..%2Fkairan.yaml"
    )
    assert traversal.status == 404


async def test_upload_too_large(small_node: Node) -> None:
    async with small_node.client() as client:
        alice = await client.register("alice")
        # With a Content-Length: refused up front.
        refused = await alice.request("POST", UPLOAD, data=b"x" * 1001)
        assert_error(refused, 413, "M_TOO_LARGE")
        # Chunked, without a Content-Length: refused once the limit is passed.

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(4):
                yield b"y" * 300

        async with client.session.post(
            small_node.base_url + UPLOAD,
            data=chunks(),
            headers={"Authorization": f"Bearer {alice.token}"},
        ) as response:
            assert response.status == 413
            assert (await response.json())["errcode"] == "M_TOO_LARGE"
        # Nothing was kept, and the limit itself is fine.
        assert list((small_node.services.config.media_path / "tmp").iterdir()) == []
        assert not (small_node.services.config.media_path / "local_content").exists()
        server, media_id = await upload(alice, b"z" * 1000)
        got = await alice.request("GET", f"{V1}/download/{server}/{media_id}")
        assert got.body == b"z" * 1000
        config = await alice.ok("GET", f"{V1}/config")
        assert config == {"m.upload.size": 1000}


async def test_media_config(node: Node, client: Client, openapi: ClientServerSpec | None) -> None:
    alice = await client.register("alice")
    for path in (f"{V1}/config", f"{LEGACY}/config"):
        response = await alice.request("GET", path)
        assert response.status == 200
        assert response.body == {"m.upload.size": node.services.config.max_upload_bytes}
        assert response.body["m.upload.size"] == 50 * 1024 * 1024
        conforms(openapi, "GET", path, 200, response.body)


async def test_bad_upload_metadata_is_rejected(node: Node, client: Client) -> None:
    alice = await client.register("alice")
    too_long = await alice.request("POST", UPLOAD, data=b"x", params={"filename": "あ" * 256})
    assert_error(too_long, 400, "M_INVALID_PARAM")
    nul = await alice.request("POST", UPLOAD, data=b"x", params={"filename": "a\x00b"})
    assert_error(nul, 400, "M_INVALID_PARAM")
    long_type = await alice.request(
        "POST", UPLOAD, data=b"x", headers={"Content-Type": "text/" + "a" * 300}
    )
    assert_error(long_type, 400, "M_INVALID_PARAM")
    # A 255-character Japanese name is fine.
    server, media_id = await upload(alice, b"ok", "text/plain", "あ" * 255)
    got = await alice.request("GET", f"{V1}/download/{server}/{media_id}")
    assert unquote(got.headers["Content-Disposition"].split("''", 1)[1]) == "あ" * 255


# ---------------------------------------------------------------- thumbnails


async def test_thumbnail_scale_and_crop_sizes(node: Node, client: Client) -> None:
    """Each request is answered with one of the configured sizes (Synapse's defaults:
    32x32 and 96x96 crop, 320x240, 640x480 and 800x600 scale), chosen by Synapse's rule."""
    alice = await client.register("alice")
    server, media_id = await upload(alice, three_bands((900, 300)), "image/png")

    # scale: the image's aspect, fitted into the configured size that fits the request best.
    scaled = opened(await thumbnail(alice, server, media_id, 320, 240, "scale"))
    assert scaled.size == (320, 107)
    assert scaled.format == "PNG"
    # The default method is scale; a smaller request gets the smallest that covers it.
    assert opened(await thumbnail(alice, server, media_id, 90, 90)).size == (320, 107)
    assert opened(await thumbnail(alice, server, media_id, 600, 250)).size == (640, 213)
    # Larger than every size: the largest (as Synapse).
    assert opened(await thumbnail(alice, server, media_id, 880, 290)).size == (800, 267)

    # crop: the configured size, from the middle of the image.
    cropped = opened(await thumbnail(alice, server, media_id, 96, 96, "crop"))
    assert cropped.size == (96, 96)
    r, g, b = cropped.convert("RGB").getpixel((48, 48))  # type: ignore[misc]
    assert g > 200 and r < 50 and b < 50  # the green middle third
    assert opened(await thumbnail(alice, server, media_id, 20, 20, "crop")).size == (32, 32)
    # Another aspect still gets a configured crop: 96x96 is at least as large.
    assert opened(await thumbnail(alice, server, media_id, 300, 50, "crop")).size == (96, 96)


async def test_dynamic_thumbnails_have_the_requested_size(tmp_path: Path, db_url: str) -> None:
    """With dynamic_thumbnails each request gets a thumbnail of its own size."""
    async with running_node(tmp_path / "n", db_url, dynamic_thumbnails=True) as started:
        async with started.client() as client:
            alice = await client.register("alice")
            server, media_id = await upload(alice, three_bands((900, 300)), "image/png")
            scaled = opened(await thumbnail(alice, server, media_id, 90, 90))
            assert scaled.size == (90, 30)
            wide = opened(await thumbnail(alice, server, media_id, 300, 50, "crop"))
            assert wide.size == (300, 50)
            left = wide.convert("RGB").getpixel((5, 25))
            right = wide.convert("RGB").getpixel((295, 25))
            assert left[0] > 200 and right[2] > 200  # type: ignore[index]  # red, blue survive
        kept = sorted(p.name for p in started.services.media.thumbnail_dir(media_id).iterdir())
        assert kept == ["300x50-crop.png", "90x90-scale.png"]


async def test_thumbnails_never_upscale(node: Node, client: Client) -> None:
    alice = await client.register("alice")
    small = image_bytes((50, 40), "PNG")
    server, media_id = await upload(alice, small, "image/png")
    # Smaller than asked for: the original content itself.
    for method in ("scale", "crop"):
        response = await thumbnail(alice, server, media_id, 320, 240, method)
        assert response.status == 200 and response.body == small
        assert response.headers["Content-Type"] == "image/png"
        assert response.headers["Content-Disposition"].startswith("inline")
    # Too small for a crop of the requested size: the largest region with its aspect.
    server, media_id = await upload(alice, image_bytes((100, 50), "PNG"), "image/png")
    assert opened(await thumbnail(alice, server, media_id, 96, 96, "crop")).size == (50, 50)
    # Every scale size is larger than the image: its thumbnails are its own size.
    assert opened(await thumbnail(alice, server, media_id, 96, 96, "scale")).size == (100, 50)


async def test_thumbnail_formats(node: Node, client: Client) -> None:
    alice = await client.register("alice")
    # JPEG stays JPEG.
    server, media_id = await upload(alice, image_bytes((640, 480), "JPEG"), "image/jpeg")
    response = await thumbnail(alice, server, media_id, 64, 64, "crop")
    assert response.headers["Content-Type"] == "image/jpeg"
    assert response.headers["Content-Disposition"] == 'inline; filename="thumbnail.jpg"'
    image = opened(response)
    assert (image.format, image.size) == ("JPEG", (96, 96))
    # Transparency survives as PNG.
    transparent = image_bytes((300, 300), "PNG", mode="RGBA", color=(10, 20, 30, 0))
    server, media_id = await upload(alice, transparent, "image/png")
    image = opened(await thumbnail(alice, server, media_id, 32, 32, "crop"))
    assert image.format == "PNG" and image.mode == "RGBA"
    assert image.getpixel((16, 16))[3] == 0  # type: ignore[index]
    # GIF (palette) and WebP become PNG; an animated GIF gives its first frame, still.
    colors = ((255, 0, 0), (0, 255, 0), (0, 0, 255))
    frames = [Image.new("RGB", (200, 100), color) for color in colors]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=100)
    assert Image.open(io.BytesIO(buffer.getvalue())).n_frames == 3  # type: ignore[attr-defined]
    server, media_id = await upload(alice, buffer.getvalue(), "image/gif")
    image = opened(await thumbnail(alice, server, media_id, 50, 50, "crop"))
    assert (image.format, image.size) == ("PNG", (96, 96))
    assert not getattr(image, "is_animated", False)
    assert image.convert("RGB").getpixel((48, 48)) == (255, 0, 0)  # the first frame
    # Even when the animation is smaller than the request, no animated original comes back.
    image = opened(await thumbnail(alice, server, media_id, 800, 600, "scale"))
    assert (image.format, image.size) == ("PNG", (200, 100))
    server, media_id = await upload(alice, image_bytes((400, 200), "WEBP"), "image/webp")
    image = opened(await thumbnail(alice, server, media_id, 100, 100, "scale"))
    assert (image.format, image.size) == ("PNG", (320, 160))


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
async def test_thumbnail_follows_exif_orientation(node: Node, client: Client) -> None:
    alice = await client.register("alice")
    image = Image.new("RGB", (200, 100), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, 30, 30))  # a red mark in the top-left corner
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to display
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif.tobytes())
    server, media_id = await upload(alice, buffer.getvalue(), "image/jpeg")
    # Displayed as 100x200 (portrait), so a crop of 32x32 is 32x32 ...
    assert opened(await thumbnail(alice, server, media_id, 32, 32, "crop")).size == (32, 32)
    # ... and every scale size, larger than the image, gives it upright at its own size ...
    thumb = opened(await thumbnail(alice, server, media_id, 50, 50, "scale")).convert("RGB")
    assert thumb.size == (100, 200)
    # ... with the mark turned to the top-right corner.
    top_right = thumb.getpixel((88, 8))
    top_left = thumb.getpixel((8, 8))
    assert top_right[0] > 180 and top_right[2] < 80  # type: ignore[index]
    assert top_left[2] > 180 and top_left[0] < 80  # type: ignore[index]

    # Broken EXIF is ignored, not a reason to refuse the image.
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\xff\xff" + b"\x00" * 10)
    server, media_id = await upload(alice, buffer.getvalue(), "image/jpeg")
    assert opened(await thumbnail(alice, server, media_id, 50, 50, "scale")).size == (200, 100)


async def test_thumbnails_are_cached_on_disk(node: Node, client: Client) -> None:
    alice = await client.register("alice")
    server, media_id = await upload(alice, three_bands((600, 400)), "image/png")
    first = await thumbnail(alice, server, media_id, 96, 96, "crop")
    cached = node.services.media.thumbnail_dir(media_id) / "96x96-crop.png"
    assert cached.read_bytes() == first.body
    # Served from the cache: change the cached file and the change shows.
    marker = image_bytes((96, 96), "PNG", color=(1, 2, 3))
    cached.write_bytes(marker)
    again = await thumbnail(alice, server, media_id, 96, 96, "crop")
    assert again.body == marker
    # Every configured size was made at once (640x480 and 800x600 are the image's own
    # size, made once); another request is answered from them.
    kept = ["320x213-scale.png", "32x32-crop.png", "600x400-scale.png", "96x96-crop.png"]
    assert sorted(p.name for p in cached.parent.iterdir()) == kept
    assert opened(await thumbnail(alice, server, media_id, 300, 200, "scale")).size == (320, 213)
    assert sorted(p.name for p in cached.parent.iterdir()) == kept


async def test_thumbnail_bad_parameters(node: Node, client: Client) -> None:
    alice = await client.register("alice")
    server, media_id = await upload(alice, image_bytes((64, 64), "PNG"), "image/png")
    path = f"{V1}/thumbnail/{server}/{media_id}"
    assert_error(await alice.request("GET", path, params={"width": "32"}), 400, "M_MISSING_PARAM")
    assert_error(await alice.request("GET", path), 400, "M_MISSING_PARAM")
    for width, height in (
        ("abc", "32"),
        ("32", "1.5"),
        ("0", "32"),
        ("000", "32"),
        ("32", "-5"),
        ("", "32"),
        ("+32", "32"),
        ("٣", "32"),  # a digit, but not an ASCII one
        ("32", "1e3"),
    ):
        response = await thumbnail(alice, server, media_id, width, height)
        assert_error(response, 400, "M_INVALID_PARAM")
    response = await thumbnail(alice, server, media_id, 32, 32, "stretch")
    assert_error(response, 400, "M_INVALID_PARAM")
    timeout = await alice.request(
        "GET", path, params={"width": "32", "height": "32", "timeout_ms": "soon"}
    )
    assert_error(timeout, 400, "M_INVALID_PARAM")
    # Absurdly large requests are just "the original".
    huge = await thumbnail(alice, server, media_id, 10**9, 10**9)
    assert opened(huge).size == (64, 64)


async def test_thumbnail_of_non_image_is_refused(node: Node, client: Client) -> None:
    alice = await client.register("alice")
    for data, content_type in (
        (b"%PDF-1.4", "application/pdf"),
        (b"hello", "text/plain"),
        (b"<svg/>", "image/svg+xml"),  # an image, but not one we decode
    ):
        server, media_id = await upload(alice, data, content_type)
        response = await thumbnail(alice, server, media_id, 32, 32)
        assert_error(response, 400, "M_UNKNOWN")
        assert content_type in response.body["error"]


async def test_corrupt_images_give_a_clear_error(node: Node, client: Client) -> None:
    alice = await client.register("alice")
    noise = Image.frombytes("RGB", (300, 300), os.urandom(300 * 300 * 3))
    buffer = io.BytesIO()
    noise.save(buffer, "PNG")
    png = buffer.getvalue()
    jpeg = image_bytes((300, 300), "JPEG")
    cases = [
        (b"\x89PNG\r\n\x1a\n" + os.urandom(500), "image/png"),  # signature, then noise
        (png[: len(png) // 2], "image/png"),  # truncated
        (jpeg[:200], "image/jpeg"),  # truncated
        (b"GIF89a" + b"\x00" * 20, "image/gif"),
        (b"not an image at all", "image/jpeg"),  # lies about its type
    ]
    for data, content_type in cases:
        server, media_id = await upload(alice, data, content_type)
        response = await thumbnail(alice, server, media_id, 32, 32, "crop")
        assert_error(response, 400, "M_UNKNOWN")
        assert (
            "could not be decoded" in response.body["error"]
            or "no pixels" in (response.body["error"])
        )
        # The content itself is still there, as uploaded.
        got = await alice.request("GET", f"{V1}/download/{server}/{media_id}")
        assert got.body == data
    # Nothing was cached for them.
    assert not (node.services.config.media_path / "thumbnails").exists() or not any(
        p.is_file() for p in (node.services.config.media_path / "thumbnails").rglob("*")
    )


async def test_decompression_bomb_is_refused(node: Node, client: Client) -> None:
    alice = await client.register("alice")
    # 40 megapixels of one bit each: a few kilobytes as PNG, 160 MB decoded as RGBA.
    bomb = image_bytes((8000, 5000), "PNG", mode="1", color=0)
    assert len(bomb) < 100_000
    server, media_id = await upload(alice, bomb, "image/png")
    response = await thumbnail(alice, server, media_id, 96, 96, "crop")
    assert_error(response, 413, "M_TOO_LARGE")
    assert "8000x5000" in response.body["error"]


# ---------------------------------------------------------------- create, then upload


async def test_create_then_upload(
    node: Node, client: Client, openapi: ClientServerSpec | None
) -> None:
    alice = await client.register("alice")
    bob = await client.register("bob")
    created = await alice.ok("POST", "/_matrix/media/v1/create")
    conforms(openapi, "POST", "/_matrix/media/v1/create", 200, created)
    match = MXC.fullmatch(created["content_uri"])
    assert match and match.group(1) == node.server_name
    server, media_id = match.groups()
    assert created["unused_expires_at"] > node.services.clock.now_ms()
    put_path = f"/_matrix/media/v3/upload/{server}/{media_id}"
    download_path = f"{V1}/download/{server}/{media_id}"

    # Not uploaded yet: a download that will not wait says so.
    early = await alice.request("GET", download_path, params={"timeout_ms": "0"})
    assert_error(early, 504, "M_NOT_YET_UPLOADED")
    conforms(openapi, "GET", download_path, 504, early.body)
    early_thumb = await alice.request(
        "GET",
        f"{V1}/thumbnail/{server}/{media_id}",
        params={"width": "8", "height": "8", "timeout_ms": "0"},
    )
    assert_error(early_thumb, 504, "M_NOT_YET_UPLOADED")

    # Only the creator may upload.
    assert_error(await bob.request("PUT", put_path, data=b"mine"), 403, "M_FORBIDDEN")

    # A waiting download gets the content as soon as it is uploaded.
    waiting = asyncio.create_task(bob.request("GET", download_path, params={"timeout_ms": "10000"}))
    await asyncio.sleep(0.2)
    assert not waiting.done()
    data = image_bytes((40, 40), "PNG")
    done = await alice.request(
        "PUT",
        put_path,
        data=data,
        headers={"Content-Type": "image/png"},
        params={"filename": "後.png"},
    )
    assert done.status == 200 and done.body == {}
    conforms(openapi, "PUT", put_path, 200, done.body)
    got = await asyncio.wait_for(waiting, 5)
    assert got.status == 200 and got.body == data
    assert got.headers["Content-Type"] == "image/png"
    assert got.headers["Content-Disposition"] == "inline; filename*=utf-8''" + quote("後.png")

    # Content, once there, cannot be replaced.
    again = await alice.request("PUT", put_path, data=b"other")
    assert_error(again, 409, "M_CANNOT_OVERWRITE_MEDIA")
    conforms(openapi, "PUT", put_path, 409, again.body)
    assert (await alice.request("GET", download_path)).body == data

    # IDs that were never created, or that came from POST /upload, cannot be uploaded to.
    unknown = await alice.request(
        "PUT", f"/_matrix/media/v3/upload/{server}/neverCreated", data=b"x"
    )
    assert_error(unknown, 404, "M_NOT_FOUND")
    _, uploaded_id = await upload(alice, b"first")
    taken = await alice.request(
        "PUT", f"/_matrix/media/v3/upload/{server}/{uploaded_id}", data=b"x"
    )
    assert_error(taken, 409, "M_CANNOT_OVERWRITE_MEDIA")


async def test_pending_uploads_expire_and_are_limited(node: Node, client: Client) -> None:
    alice = await client.register("alice")
    created = [
        await alice.ok("POST", "/_matrix/media/v1/create") for _ in range(MAX_PENDING_PER_USER)
    ]
    over = await alice.request("POST", "/_matrix/media/v1/create")
    assert_error(over, 429, "M_LIMIT_EXCEEDED")
    assert over.body["retry_after_ms"] > 0
    # Another user has their own allowance.
    bob = await client.register("bob")
    await bob.ok("POST", "/_matrix/media/v1/create")

    # Once expired, the IDs are gone and the allowance is back.
    server, media_id = MXC.fullmatch(created[0]["content_uri"]).groups()  # type: ignore[union-attr]
    clock = node.services.clock
    real_now = clock.now_ms
    later = real_now() + 24 * 60 * 60 * 1000 + 1
    clock.now_ms = lambda: later  # type: ignore[method-assign]
    try:
        put = await alice.request("PUT", f"/_matrix/media/v3/upload/{server}/{media_id}", data=b"x")
        assert_error(put, 404, "M_NOT_FOUND")
        gone = await alice.request("GET", f"{V1}/download/{server}/{media_id}")
        assert_error(gone, 404, "M_NOT_FOUND")
        await alice.ok("POST", "/_matrix/media/v1/create")
    finally:
        clock.now_ms = real_now  # type: ignore[method-assign]
    async with node.services.db.read() as conn:
        assert await media_store.get_media(conn, media_id) is None


@pytest.mark.conformance
async def test_upload_response_matches_the_spec(
    node: Node, client: Client, spec: ClientServerSpec
) -> None:
    alice = await client.register("alice")
    body = await alice.ok("POST", UPLOAD, data=b"abc", params={"filename": "a.txt"})
    spec.validate("POST", UPLOAD, 200, body)
    missing = await alice.request("GET", f"{V1}/download/{node.server_name}/nope")
    spec.validate("GET", f"{V1}/download/{node.server_name}/nope", 404, missing.body)
    bad = await thumbnail(alice, node.server_name, "nope", "x", 1)
    spec.validate("GET", f"{V1}/thumbnail/{node.server_name}/nope", 400, bad.body)


async def test_range_and_head_requests(node: Node, client: Client) -> None:
    alice = await client.register("alice")
    data = bytes(range(256)) * 40
    server, media_id = await upload(alice, data, "video/mp4", "clip.mp4")
    path = f"{V1}/download/{server}/{media_id}"
    part = await alice.request("GET", path, headers={"Range": "bytes=100-199"})
    assert part.status == 206 and part.body == data[100:200]
    head = await alice.request("HEAD", path)
    assert head.status == 200 and head.body == b""
    assert head.headers["Content-Length"] == str(len(data))
    assert head.headers["Content-Disposition"] == 'inline; filename="clip.mp4"'


async def test_interrupted_upload_leaves_nothing(node: Node, client: Client) -> None:
    alice = await client.register("alice")
    host, port = node.server_name.split(":")
    _, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        f"POST {UPLOAD} HTTP/1.1\r\nHost: {node.server_name}\r\n"
        f"Authorization: Bearer {alice.token}\r\nContent-Type: image/png\r\n"
        "Content-Length: 100000\r\n\r\n".encode()
        + b"a" * 50_000
    )
    await writer.drain()
    writer.close()  # half the promised body, then gone
    tmp = node.services.config.media_path / "tmp"
    for _ in range(50):
        await asyncio.sleep(0.05)
        if tmp.exists() and not any(tmp.iterdir()):
            break
    assert tmp.exists() and list(tmp.iterdir()) == []
    async with node.services.db.read() as conn:
        rows = (await conn.execute(select(schema.media))).all()
    assert rows == []
    assert not (node.services.config.media_path / "local_content").exists()


async def test_stale_temporary_files_are_removed(node: Node, client: Client) -> None:
    alice = await client.register("alice")
    tmp = node.services.config.media_path / "tmp"
    tmp.mkdir(parents=True)
    stale, fresh = tmp / "stale", tmp / "fresh"
    stale.write_bytes(b"left by a crash")
    fresh.write_bytes(b"being written")
    two_hours_ago = time.time() - 7200
    os.utime(stale, (two_hours_ago, two_hours_ago))
    await upload(alice, b"content")
    assert not stale.exists()
    assert fresh.exists()


async def test_dynamic_thumbnail_cache_is_bounded(
    tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(thumbnails, "MAX_CACHED_THUMBNAILS", 2)
    async with running_node(tmp_path / "n", db_url, dynamic_thumbnails=True) as node:
        async with node.client() as client:
            alice = await client.register("alice")
            server, media_id = await upload(alice, three_bands((600, 300)), "image/png")
            sizes = [(60, 60), (90, 90), (120, 120), (150, 150)]
            for width, height in sizes:
                image = opened(await thumbnail(alice, server, media_id, width, height, "crop"))
                assert image.size == (width, height)  # served either way
        cached = sorted(p.name for p in node.services.media.thumbnail_dir(media_id).iterdir())
        assert cached == ["60x60-crop.png", "90x90-crop.png"]
        assert not list((node.services.config.media_path / "tmp").iterdir())


async def test_concurrent_uploads_to_one_id(node: Node, client: Client) -> None:
    alice = await client.register("alice")
    created = await alice.ok("POST", "/_matrix/media/v1/create")
    server, media_id = MXC.fullmatch(created["content_uri"]).groups()  # type: ignore[union-attr]
    path = f"/_matrix/media/v3/upload/{server}/{media_id}"
    bodies = [os.urandom(300_000), os.urandom(300_000)]
    responses = await asyncio.gather(*(alice.request("PUT", path, data=b) for b in bodies))
    statuses = sorted(r.status for r in responses)
    assert statuses == [200, 409], responses
    winner = bodies[[r.status for r in responses].index(200)]
    got = await alice.request("GET", f"{V1}/download/{server}/{media_id}")
    assert got.body == winner
    async with node.services.db.read() as conn:
        record = await media_store.get_media(conn, media_id)
    assert record is not None and record.size == len(winner)


async def test_malformed_requests_never_fail_the_server(node: Node, client: Client) -> None:
    alice = await client.register("alice")
    server, media_id = await upload(alice, image_bytes((64, 48), "PNG"), "image/png")
    session = alice.client.session
    auth = {"Authorization": f"Bearer {alice.token}"}
    odd_segments = ["%00", "%2e%2e", "a" * 2000, "%E6%97%A5%E6%9C%AC", "%ED%A0%80", "+", "~"]
    urls: list[tuple[str, str, bytes | None]] = []
    for segment in odd_segments:
        urls += [
            ("GET", f"{V1}/download/{segment}/{media_id}", None),
            ("GET", f"{V1}/download/{server}/{segment}", None),
            ("GET", f"{V1}/download/{server}/{media_id}/{segment}", None),
            ("GET", f"{V1}/thumbnail/{server}/{segment}?width=8&height=8", None),
            ("GET", f"{LEGACY}/download/{server}/{segment}", None),
            ("PUT", f"{LEGACY}/upload/{server}/{segment}", b"x"),
            ("PUT", f"{LEGACY}/upload/{segment}/{media_id}", b"x"),
            ("POST", f"{UPLOAD}?filename={segment}", b"x"),
        ]
    for query in (
        "width=%D9%A3&height=3",  # Arabic-Indic digit three
        "width=1e3&height=10",
        "width=99999999999999999999999999&height=1",
        "width=8&height=8&method=",
        "width=8&height=8&method=CROP",
        "width=8&height=8&timeout_ms=-5",
        "width=8&height=8&timeout_ms=99999999999999999999",
        "width=8&height=8&animated=maybe",
        "width=&height=",
    ):
        urls.append(("GET", f"{V1}/thumbnail/{server}/{media_id}?{query}", None))
    for method, path, data in urls:
        async with session.request(
            method, URL(node.base_url + path, encoded=True), data=data, headers=auth
        ) as response:
            body = await response.read()
            assert response.status < 500, (method, path, response.status, body[:200])
            if response.status >= 400:
                error = await response.json()
                assert isinstance(error.get("errcode"), str), (method, path, error)


async def test_missing_file_is_not_found_not_a_crash(node: Node, client: Client) -> None:
    alice = await client.register("alice")
    server, media_id = await upload(alice, image_bytes((300, 200), "PNG"), "image/png")
    node.services.media.content_path(media_id).unlink()  # lost by an operator, say
    download = await alice.request("GET", f"{V1}/download/{server}/{media_id}")
    assert_error(download, 404, "M_NOT_FOUND")
    assert_error(await thumbnail(alice, server, media_id, 32, 32), 404, "M_NOT_FOUND")
