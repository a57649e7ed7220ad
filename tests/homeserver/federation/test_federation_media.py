"""Media across two Kairan nodes over HTTPS: a user's upload on A downloads and thumbnails
from B (fetched over federation once, then from B's cache), the federation download
endpoint's multipart answer, size limits, and the legacy fallback for older servers."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from PIL import Image

from federation.client import RemoteError, federation_path
from homeserver.config import Rate
from homeserver.node.app import ssl_context
from homeserver.storage import remote_cache
from tests.homeserver.client import Response, User
from tests.homeserver.conftest import Node, free_port, two_nodes

V1 = "/_matrix/client/v1/media"
LEGACY = "/_matrix/media/v3"


@pytest.fixture
async def pair_small_b(
    tmp_path: Path, db_url: str, db_url_b: str
) -> AsyncIterator[tuple[Node, Node]]:
    """B accepts (and fetches) at most 1000 bytes."""
    async for nodes in two_nodes(tmp_path, db_url, db_url_b, max_upload_bytes=1000):
        yield nodes


def png(size: tuple[int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


async def upload(user: User, data: bytes, content_type: str, filename: str) -> tuple[str, str]:
    result = await user.ok(
        "POST",
        f"{LEGACY}/upload",
        params={"filename": filename},
        data=data,
        headers={"Content-Type": content_type},
    )
    server, media_id = result["content_uri"].removeprefix("mxc://").split("/")
    return server, media_id


def assert_error(response: Response, status: int, errcode: str) -> None:
    assert response.status == status, response
    assert isinstance(response.body, dict) and response.body["errcode"] == errcode, response


async def test_image_from_a_downloads_and_thumbnails_on_b(pair: tuple[Node, Node]) -> None:
    a, b = pair
    async with a.client() as ca, b.client() as cb:
        alice = await ca.register("alice")
        bob = await cb.register("bob")
        image = png((400, 300))
        server, media_id = await upload(alice, image, "image/png", "写真.png")
        assert server == a.server_name
        # Not fetched through the unauthenticated legacy endpoints, nor with allow_remote=false.
        legacy = await bob.request("GET", f"{LEGACY}/download/{server}/{media_id}")
        assert_error(legacy, 404, "M_NOT_FOUND")
        no_remote = await bob.request(
            "GET", f"{V1}/download/{server}/{media_id}", params={"allow_remote": "false"}
        )
        assert_error(no_remote, 404, "M_NOT_FOUND")

        got = await bob.request("GET", f"{V1}/download/{server}/{media_id}")
        assert got.status == 200, got
        assert got.body == image
        assert got.headers["Content-Type"] == "image/png"
        assert got.headers["Content-Disposition"] == (
            "inline; filename*=utf-8''%E5%86%99%E7%9C%9F.png"
        )
        async with b.services.db.read() as conn:
            cached = await remote_cache.get_media(conn, server, media_id)
        assert cached is not None and cached.size == len(image)

        thumb = await bob.request(
            "GET",
            f"{V1}/thumbnail/{server}/{media_id}",
            params={"width": "32", "height": "32", "method": "scale"},
        )
        assert thumb.status == 200, thumb
        assert isinstance(thumb.body, bytes)
        # B makes the configured sizes of its copy: a small scale request gets the
        # 320x240 one (Synapse's choice), a crop one its 32x32.
        assert Image.open(io.BytesIO(thumb.body)).size == (320, 240)
        cropped = await bob.request(
            "GET",
            f"{V1}/thumbnail/{server}/{media_id}",
            params={"width": "32", "height": "32", "method": "crop"},
        )
        assert isinstance(cropped.body, bytes), cropped
        assert Image.open(io.BytesIO(cropped.body)).size == (32, 32)
        # Made once, from B's cached copy, and kept there.
        kept = sorted(p.name for p in b.services.config.media_path.rglob("*-*.png"))
        assert kept == [
            "320x240-scale.png",
            "32x32-crop.png",
            "400x300-scale.png",
            "96x96-crop.png",
        ]

        # From now on B serves its copy: A's file can be gone.
        a.services.media.content_path(media_id).unlink()
        again = await bob.request("GET", f"{V1}/download/{server}/{media_id}")
        assert again.status == 200 and again.body == image
        # The frozen legacy endpoints do not serve what was fetched for the authenticated
        # ones (as Synapse with enable_authenticated_media).
        for legacy_path in (
            f"{LEGACY}/download/{server}/{media_id}",
            f"{LEGACY}/thumbnail/{server}/{media_id}?width=32&height=32",
        ):
            assert_error(await bob.request("GET", legacy_path), 404, "M_NOT_FOUND")
        # A file name in the path overrides the stored one.
        named = await bob.request("GET", f"{V1}/download/{server}/{media_id}/plan.png")
        assert named.headers["Content-Disposition"] == 'inline; filename="plan.png"'

        # Media A does not have is 404 on B too, never a 5xx.
        missing = await bob.request("GET", f"{V1}/download/{server}/NoSuchMedia123")
        assert_error(missing, 404, "M_NOT_FOUND")
        not_thumbnailable = await upload(alice, b"plain text", "text/plain", "memo.txt")
        refused = await bob.request(
            "GET",
            f"{V1}/thumbnail/{not_thumbnailable[0]}/{not_thumbnailable[1]}",
            params={"width": "32", "height": "32"},
        )
        assert_error(refused, 400, "M_UNKNOWN")


async def test_remote_media_larger_than_the_limit_is_refused(
    pair_small_b: tuple[Node, Node],
) -> None:
    a, b = pair_small_b
    async with a.client() as ca, b.client() as cb:
        alice = await ca.register("alice")
        bob = await cb.register("bob")
        server, big = await upload(alice, b"x" * 5000, "application/octet-stream", "big.bin")
        for _ in range(2):  # nothing was kept from the first attempt
            assert_error(
                await bob.request("GET", f"{V1}/download/{server}/{big}"), 502, "M_TOO_LARGE"
            )
        async with b.services.db.read() as conn:
            assert await remote_cache.get_media(conn, server, big) is None
        # Within the limit it works.
        _, small = await upload(alice, b"y" * 900, "application/octet-stream", "small.bin")
        got = await bob.request("GET", f"{V1}/download/{server}/{small}")
        assert got.status == 200 and got.body == b"y" * 900


async def test_federation_download_endpoint(pair: tuple[Node, Node]) -> None:
    a, b = pair
    async with b.client() as cb:
        bob = await cb.register("bob")
        data = "議事録".encode() * 100
        _, media_id = await upload(bob, data, "text/plain; charset=utf-8", "議事録.txt")
    client = a.services.federation.client
    async with client.stream(
        b.server_name, federation_path("v1", "media/download", media_id)
    ) as response:
        assert response.status == 200
        assert response.content_type == "multipart/mixed"
        reader = aiohttp.MultipartReader(response.headers, response.content)
        metadata = await reader.next()
        assert isinstance(metadata, aiohttp.BodyPartReader)
        assert metadata.headers["Content-Type"].startswith("application/json")
        assert json.loads(await metadata.read()) == {}
        content = await reader.next()
        assert isinstance(content, aiohttp.BodyPartReader)
        assert content.headers["Content-Type"] == "text/plain; charset=utf-8"
        assert "filename*=utf-8''" in content.headers["Content-Disposition"]
        assert bytes(await content.read()) == data
        assert await reader.next() is None

    for bad in ("NoSuchMedia123", "bad.id", "a" * 300):
        with pytest.raises(RemoteError) as caught:
            await client.request(b.server_name, "GET", federation_path("v1", "media/download", bad))
        assert caught.value.status == 404 and caught.value.errcode == "M_NOT_FOUND"
    # Thumbnails: multipart too, the configured size that answers the request best.
    async with b.client() as cb:
        bob = await cb.register("bob2")
        _, image_id = await upload(bob, png((1000, 500)), "image/png", "map.png")
    thumbnail_path = federation_path("v1", "media/thumbnail", image_id)
    async with client.stream(
        b.server_name, thumbnail_path, query={"width": "40", "height": "40", "method": "scale"}
    ) as response:
        assert response.status == 200 and response.content_type == "multipart/mixed"
        reader = aiohttp.MultipartReader(response.headers, response.content)
        metadata = await reader.next()
        assert isinstance(metadata, aiohttp.BodyPartReader)
        assert json.loads(await metadata.read()) == {}
        content = await reader.next()
        assert isinstance(content, aiohttp.BodyPartReader)
        assert content.headers["Content-Type"] == "image/png"
        thumb = Image.open(io.BytesIO(bytes(await content.read())))
        assert thumb.size == (320, 160)
    for query, errcode in (
        ({"width": "40"}, "M_MISSING_PARAM"),
        ({"width": "x", "height": "40"}, "M_INVALID_PARAM"),
        ({"width": "0", "height": "40"}, "M_INVALID_PARAM"),
        ({"width": "40", "height": "40", "method": "stretch"}, "M_INVALID_PARAM"),
    ):
        with pytest.raises(RemoteError) as caught:
            await client.request(b.server_name, "GET", thumbnail_path, query=query)
        assert caught.value.status == 400 and caught.value.errcode == errcode, query
    for bad, status, errcode in (
        (media_id, 400, "M_UNKNOWN"),
        ("NoSuchMedia1", 404, "M_NOT_FOUND"),
    ):
        with pytest.raises(RemoteError) as caught:
            await client.request(
                b.server_name,
                "GET",
                federation_path("v1", "media/thumbnail", bad),
                query={"width": "40", "height": "40"},
            )
        assert (caught.value.status, caught.value.errcode) == (status, errcode)
    # Unsigned requests are refused.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=False)) as session:
        url = f"{b.base_url}{federation_path('v1', 'media/download', media_id)}"
        async with session.get(url) as unsigned:
            assert unsigned.status == 401
            assert (await unsigned.json())["errcode"] == "M_UNAUTHORIZED"


async def stand_in_server(node: Node, name: str, app: web.Application) -> web.AppRunner:
    """Serve ``app`` over HTTPS on loopback as the server ``name``, for ``node``'s requests."""
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    context = ssl_context(node.services.config)
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=context).start()
    node.services.federation.client.resolver._overrides[name] = f"127.0.0.1:{port}"
    return runner


MULTIPART = "multipart/mixed; boundary=xyz"
#: media ID -> (status, content type, body) of broken answers to a federation download.
BROKEN: dict[str, tuple[int, str, bytes]] = {
    "WrongBoundary": (200, MULTIPART, b"--other\r\n\r\n{}\r\n--other--\r\n"),
    "NotMultipart": (200, "application/json", b"{}"),
    "OnlyMetadata": (
        200,
        MULTIPART,
        b"--xyz\r\nContent-Type: application/json\r\n\r\n{}\r\n--xyz--\r\n",
    ),
    "MetadataNotJson": (
        200,
        MULTIPART,
        b"--xyz\r\nContent-Type: application/json\r\n\r\n[1,2\r\n--xyz\r\n"
        b"Content-Type: text/plain\r\n\r\nhello\r\n--xyz--\r\n",
    ),
    "Redirect": (
        200,
        MULTIPART,
        b"--xyz\r\nContent-Type: application/json\r\n\r\n{}\r\n--xyz\r\n"
        b"Location: https://127.0.0.1:1/x\r\n\r\n\r\n--xyz--\r\n",
    ),
    "Truncated": (200, MULTIPART, b"--xyz\r\nContent-Type: application/json\r\n\r\n{"),
    "ServerError": (500, "application/json", b'{"errcode":"M_UNKNOWN","error":"boom"}'),
    "NotJsonError": (503, "text/html", b"<html>down</html>"),
}


async def test_broken_answers_from_the_remote_server_are_502(pair: tuple[Node, Node]) -> None:
    _, b = pair

    async def broken(request: web.Request) -> web.Response:
        status, content_type, body = BROKEN[request.match_info["media_id"]]
        return web.Response(status=status, body=body, headers={"Content-Type": content_type})

    app = web.Application()
    app.router.add_get("/_matrix/federation/v1/media/download/{media_id}", broken)
    runner = await stand_in_server(b, "broken.example", app)
    try:
        async with b.client() as cb:
            bob = await cb.register("bob")
            for media_id in BROKEN:
                got = await bob.request("GET", f"{V1}/download/broken.example/{media_id}")
                assert_error(got, 502, "M_UNKNOWN")
                thumb = await bob.request(
                    "GET",
                    f"{V1}/thumbnail/broken.example/{media_id}",
                    params={"width": "8", "height": "8"},
                )
                assert_error(thumb, 502, "M_UNKNOWN")
        async with b.services.db.read() as conn:
            for media_id in BROKEN:
                assert await remote_cache.get_media(conn, "broken.example", media_id) is None
    finally:
        await runner.cleanup()


async def test_content_behind_a_location_part_is_fetched_from_there(
    pair: tuple[Node, Node],
) -> None:
    _, b = pair
    where: dict[str, str] = {}

    async def download(request: web.Request) -> web.Response:
        media_id = request.match_info["media_id"]
        location = {
            "Moved1": f"https://127.0.0.1:{where['port']}/files/moved",
            "PlainHttp": f"http://127.0.0.1:{where['port']}/files/moved",
            "Missing": f"https://127.0.0.1:{where['port']}/files/missing",
        }[media_id]
        body = (
            b"--xyz\r\nContent-Type: application/json\r\n\r\n{}\r\n--xyz\r\n"
            + f"Location: {location}\r\n\r\n\r\n--xyz--\r\n".encode()
        )
        return web.Response(body=body, headers={"Content-Type": MULTIPART})

    async def moved(request: web.Request) -> web.Response:
        return web.Response(
            body=b"moved content",
            headers={
                "Content-Type": "text/plain",
                "Content-Disposition": 'attachment; filename="moved.txt"',
            },
        )

    app = web.Application()
    app.router.add_get("/_matrix/federation/v1/media/download/{media_id}", download)
    app.router.add_get("/files/moved", moved)
    runner = await stand_in_server(b, "cdn.example", app)
    where["port"] = b.services.federation.client.resolver._overrides["cdn.example"].split(":")[-1]
    try:
        async with b.client() as cb:
            bob = await cb.register("bob")
            got = await bob.request("GET", f"{V1}/download/cdn.example/Moved1")
            assert got.status == 200 and got.body == b"moved content", got
            assert got.headers["Content-Disposition"] == 'inline; filename="moved.txt"'
            for refused in ("PlainHttp", "Missing"):
                response = await bob.request("GET", f"{V1}/download/cdn.example/{refused}")
                assert_error(response, 502, "M_UNKNOWN")
    finally:
        await runner.cleanup()


async def test_legacy_fallback_for_servers_without_federation_media(
    pair: tuple[Node, Node],
) -> None:
    """A server that does not know the v1 federation endpoint (404 M_UNRECOGNIZED) is asked
    at the legacy /_matrix/media/v3/download, with allow_remote=false."""
    _, b = pair
    seen: list[str] = []

    async def unknown(request: web.Request) -> web.Response:
        seen.append(request.path)
        return web.json_response({"errcode": "M_UNRECOGNIZED", "error": "?"}, status=404)

    async def legacy(request: web.Request) -> web.Response:
        seen.append(request.path_qs)
        return web.Response(
            body=b"old server",
            headers={
                "Content-Type": "text/plain",
                "Content-Disposition": 'attachment; filename="old.txt"',
            },
        )

    app = web.Application()
    app.router.add_get("/_matrix/federation/v1/{tail:.*}", unknown)
    app.router.add_get("/_matrix/media/v3/download/{server}/{media_id}", legacy)
    runner = await stand_in_server(b, "old.example", app)
    try:
        async with b.client() as cb:
            bob = await cb.register("bob")
            got = await bob.request("GET", f"{V1}/download/old.example/OldMedia1")
            assert got.status == 200, got
            assert got.body == b"old server"
            assert got.headers["Content-Disposition"] == 'inline; filename="old.txt"'
        assert seen == [
            "/_matrix/federation/v1/media/download/OldMedia1",
            "/_matrix/media/v3/download/old.example/OldMedia1?allow_remote=false",
        ]
    finally:
        await runner.cleanup()


async def test_federation_media_requests_are_rate_limited(
    tmp_path: Path, db_url: str, db_url_b: str
) -> None:
    """rc_media_download counts another server's media requests, per server: over it,
    429 M_LIMIT_EXCEEDED with retry_after_ms."""
    async for a, b in two_nodes(tmp_path, db_url, db_url_b, media_download_limit=Rate(0.01, 3)):
        async with b.client() as cb:
            bob = await cb.register("bob")
            _, media_id = await upload(bob, png((300, 200)), "image/png", "map.png")
        client = a.services.federation.client
        download = federation_path("v1", "media/download", media_id)
        thumbnail = federation_path("v1", "media/thumbnail", media_id)
        query = {"width": "32", "height": "32", "method": "crop"}
        for path in (download, thumbnail, download):
            async with client.stream(b.server_name, path, query=query) as response:
                assert response.status == 200
                await response.read()
        with pytest.raises(RemoteError) as caught:
            await client.request(b.server_name, "GET", thumbnail, query=query)
        assert (caught.value.status, caught.value.errcode) == (429, "M_LIMIT_EXCEEDED")
        # B's own users have buckets of their own.
        async with b.client() as cb:
            carol = await cb.register("carol")
            got = await carol.request("GET", f"{V1}/download/{b.server_name}/{media_id}")
            assert got.status == 200
