"""URL previews over real HTTP on both databases, against a real site on loopback (allowed
explicitly by the test's config): OpenGraph tags, <title> as a fallback, og:image stored
as the user's media, redirects, huge pages cut, results cached.  The attacker's side
first: off by default; loopback, private and IPv6 loopback URLs refused by default; a
redirect from an allowed site to a denied address refused without the second site being
asked; other schemes refused; slow sites time out."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from PIL import Image

from homeserver.config.model import UrlPreviewSettings
from tests.homeserver.client import User
from tests.homeserver.conftest import Node, free_port, running_node
from tests.homeserver.openapi import ClientServerSpec, ValidatingClient

PREVIEW = "/_matrix/client/v1/media/preview_url"
LEGACY = "/_matrix/media/v3/preview_url"


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 6), (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


PAGE = """<!doctype html><html><head><meta charset="utf-8">
<title>無視されるタイトル</title>
<meta property="og:title" content="防災訓練のお知らせ">
<meta property="og:description" content="11月3日 9時 市役所前">
<meta property="og:image" content="/banner.png">
</head><body>本文</body></html>"""


@dataclass
class Site:
    """A web server on a loopback address that counts the requests it gets."""

    host: str
    port: int = 0
    hits: list[str] = field(default_factory=list)
    redirect_to: str = ""

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"

    def app(self) -> web.Application:
        async def handle(request: web.Request) -> web.StreamResponse:
            self.hits.append(request.path)
            path = request.path
            if path == "/page":
                return web.Response(text=PAGE, content_type="text/html")
            if path == "/title-only":
                body = "<html><head><title> 広報\n かわら版 </title>"
                body += '<meta name="description" content="月刊"></head></html>'
                return web.Response(text=body, content_type="text/html", charset="utf-8")
            if path == "/banner.png":
                return web.Response(body=png(), content_type="image/png")
            if path == "/redirect":
                raise web.HTTPFound("/page")
            if path == "/elsewhere":
                raise web.HTTPFound(self.redirect_to)
            if path == "/huge":
                response = web.StreamResponse(headers={"Content-Type": "text/html"})
                await response.prepare(request)
                await response.write(b'<html><head><meta property="og:title" content="big">')
                try:
                    for _ in range(2000):  # 64 MB if it were all read
                        await response.write(b"<!--" + b"x" * 32_000 + b"-->")
                except Exception:  # the node stopped reading: what the test wants
                    return response
                return response
            if path == "/slow":
                await asyncio.sleep(5)
                return web.Response(text="<title>late</title>", content_type="text/html")
            return web.Response(status=404)

        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", handle)
        return app


async def _serve(site: Site) -> web.AppRunner:
    site.port = free_port()
    runner = web.AppRunner(site.app())
    await runner.setup()
    await web.TCPSite(runner, site.host, site.port).start()
    return runner


@pytest.fixture
async def sites() -> AsyncIterator[tuple[Site, Site]]:
    """The allowed site (127.0.0.1) and an inner one (127.0.0.2), loopback like it but
    not allowed: what an attacker wants the node to reach."""
    outer, inner = Site("127.0.0.1"), Site("127.0.0.2")
    runners = [await _serve(outer), await _serve(inner)]
    outer.redirect_to = f"{inner.base}/page"
    try:
        yield outer, inner
    finally:
        for runner in runners:
            await runner.cleanup()


async def _node(tmp_path: Path, db_url: str, settings: UrlPreviewSettings) -> AsyncIterator[Node]:
    async with running_node(tmp_path / "node", db_url, url_preview=settings) as started:
        yield started


@pytest.fixture
async def allowing(tmp_path: Path, db_url: str) -> AsyncIterator[Node]:
    settings = UrlPreviewSettings(
        enabled=True, ip_range_allowlist=("127.0.0.1/32",), max_size=64 * 1024, timeout_ms=2000
    )
    async for node in _node(tmp_path, db_url, settings):
        yield node


@pytest.fixture
async def guarded(tmp_path: Path, db_url: str) -> AsyncIterator[Node]:
    async for node in _node(tmp_path, db_url, UrlPreviewSettings(enabled=True, timeout_ms=2000)):
        yield node


async def _status(user: Any, url: str, path: str = PREVIEW) -> tuple[int, str]:
    answer = await user.request("GET", path, params={"url": url})
    return answer.status, answer.body.get("errcode", "")


async def test_off_by_default(node: Node, sites: tuple[Site, Site]) -> None:
    outer, _ = sites
    async with node.client() as c:
        alice = await c.register("alice")
        for path in (PREVIEW, LEGACY):
            assert await _status(alice, f"{outer.base}/page", path) == (404, "M_UNRECOGNIZED")
        assert (await c.request("GET", PREVIEW, params={"url": f"{outer.base}/page"})).status == 401
    assert outer.hits == []


async def test_the_guard_refuses_internal_addresses(
    guarded: Node, sites: tuple[Site, Site]
) -> None:
    outer, inner = sites
    async with guarded.client() as c:
        alice = await c.register("alice")
        for url in (
            f"{outer.base}/page",
            f"http://localhost:{outer.port}/page",
            f"{inner.base}/page",
            f"http://[::1]:{outer.port}/page",
            f"http://[::ffff:127.0.0.1]:{outer.port}/page",
            "http://10.1.2.3/",
            "http://169.254.169.254/latest/meta-data/",
            "http://192.168.0.1/",
            "http://0.0.0.0:80/",
        ):
            assert await _status(alice, url) == (502, "M_UNKNOWN"), url
        for url in ("ftp://example.jp/", "file:///etc/passwd", "gopher://x/", "/relative", ""):
            status, errcode = await _status(alice, url)
            assert status == 400 and errcode in ("M_INVALID_PARAM", "M_MISSING_PARAM"), url
    assert outer.hits == [] and inner.hits == []


async def test_previews(
    allowing: Node, sites: tuple[Site, Site], openapi: ClientServerSpec | None
) -> None:
    outer, inner = sites
    async with ValidatingClient(allowing.base_url, openapi) as c:
        alice = await c.register("alice")
        og = await alice.ok("GET", PREVIEW, params={"url": f"{outer.base}/page", "ts": "1"})
        assert og["og:title"] == "防災訓練のお知らせ"
        assert og["og:description"] == "11月3日 9時 市役所前"
        assert og["og:image"].startswith(f"mxc://{allowing.server_name}/")
        assert og["og:image:type"] == "image/png" and og["matrix:image:size"] == len(png())
        media_path = og["og:image"].removeprefix("mxc://")
        image = await alice.request("GET", f"/_matrix/client/v1/media/download/{media_path}")
        assert image.status == 200 and image.body == png()

        # Cached: asked again, the site is not.
        hits = len(outer.hits)
        again = await alice.ok("GET", LEGACY, params={"url": f"{outer.base}/page"})
        assert again == og and len(outer.hits) == hits

        titled = await alice.ok("GET", PREVIEW, params={"url": f"{outer.base}/title-only"})
        assert titled == {"og:title": "広報 かわら版", "og:description": "月刊"}
        redirected = await alice.ok("GET", PREVIEW, params={"url": f"{outer.base}/redirect"})
        assert redirected["og:title"] == "防災訓練のお知らせ"
        picture = await alice.ok("GET", PREVIEW, params={"url": f"{outer.base}/banner.png"})
        assert picture["og:image:type"] == "image/png"

        # A huge page is cut at max_size (its head is still read); the rest is not fetched.
        big = await alice.ok("GET", PREVIEW, params={"url": f"{outer.base}/huge"})
        assert big == {"og:title": "big"}

        # The attacker's side on a node that allows the outer site: a redirect to a denied
        # address, slow sites, pages that are not there (502 M_UNKNOWN, as Synapse; asked
        # with a plain client, since the validating one allows no 5xx but the spec's 504).
        plain = allowing.client()
        await plain.__aenter__()
        alice = User(plain, alice.user_id, alice.token, alice.device_id)
        assert await _status(alice, f"{outer.base}/elsewhere") == (502, "M_UNKNOWN")
        assert inner.hits == []
        assert await _status(alice, f"{outer.base}/slow") == (502, "M_UNKNOWN")
        assert await _status(alice, f"{outer.base}/missing") == (502, "M_UNKNOWN")
        bad_ts = await alice.request(
            "GET", PREVIEW, params={"url": f"{outer.base}/page", "ts": "x"}
        )
        assert (bad_ts.status, bad_ts.body["errcode"]) == (400, "M_INVALID_PARAM")
        await plain.close()
        c.check("GET /_matrix/client/v1/media/preview_url")
