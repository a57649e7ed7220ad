"""URL previews (``GET /_matrix/client/v1/media/preview_url``): off unless
``url_preview.enabled``, since the node then fetches URLs that any user names.

The SSRF guard, as for pushers (homeserver/push/gateway.py) and Synapse's
``url_preview_ip_range_blacklist``: only http and https; the host is resolved and the
fetch refused when *any* of its addresses is denied (private, loopback, link-local, CGNAT,
multicast, reserved ranges, plus ``ip_range_denylist``) unless ``ip_range_allowlist``
holds it; the connection goes to the address that was checked (no second resolution to
rebind); redirects are followed by hand, at most five, each checked the same way.  A page
is read up to ``max_size`` bytes (the rest is cut off: OpenGraph tags are at the top), the
whole fetch within ``timeout``.  The ``og:image`` is fetched the same way and stored as
the user's media (its ``mxc://``), as Synapse does.  Results, failures included, are kept
per URL for ``cache`` (1 hour), and one fetch per URL runs at a time.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import urllib.parse
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import yarl

from federation.client import is_private, resolve
from homeserver.common.clock import Clock
from homeserver.common.errors import MatrixError, invalid_param, unrecognized
from homeserver.config.model import DEFAULT_PREVIEW_DENYLIST, UrlPreviewSettings
from homeserver.media.preview_html import open_graph
from homeserver.media.service import MediaService

log = logging.getLogger(__name__)

MAX_REDIRECTS = 5
MAX_URL = 2048
CACHE_ENTRIES = 1000
USER_AGENT = "Kairan (bot; URL preview)"
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class FetchError(Exception):
    """The URL could not be fetched; the message is safe to log."""


@dataclass(frozen=True)
class Fetched:
    url: str
    status: int
    content_type: str
    charset: str | None
    body: bytes


def _networks(ranges: tuple[str, ...]) -> tuple[_Network, ...]:
    return tuple(ipaddress.ip_network(r, strict=False) for r in ranges)


class UrlPreviewer:
    def __init__(self, settings: UrlPreviewSettings, media: MediaService, clock: Clock) -> None:
        self.settings = settings
        self.media = media
        self.clock = clock
        self._denied = _networks(DEFAULT_PREVIEW_DENYLIST + settings.ip_range_denylist)
        self._allowed = _networks(settings.ip_range_allowlist)
        #: url -> (expires at, the preview or the error it gave)
        self._cache: OrderedDict[str, tuple[int, dict[str, Any] | MatrixError]] = OrderedDict()
        self._running: dict[str, asyncio.Task[dict[str, Any]]] = {}
        self._session: aiohttp.ClientSession | None = None

    @property
    def enabled(self) -> bool:
        return self.settings.enabled

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    # ------------------------------------------------------------------ previews

    async def preview(self, user_id: str, url: str) -> dict[str, Any]:
        if not self.enabled:
            raise unrecognized()
        parts = urllib.parse.urlsplit(url) if len(url) <= MAX_URL else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            raise invalid_param("url must be an http or https URL")
        now = self.clock.now_ms()
        cached = self._cache.get(url)
        if cached is not None and cached[0] > now:
            self._cache.move_to_end(url)
            return _answer(cached[1])
        task = self._running.get(url)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._make(user_id, url))
            self._running[url] = task
            task.add_done_callback(lambda _: self._running.pop(url, None))
        try:
            result: dict[str, Any] | MatrixError = await asyncio.shield(task)
        except MatrixError as e:
            result = e
        self._cache[url] = (self.clock.now_ms() + self.settings.cache_ms, result)
        self._cache.move_to_end(url)
        while len(self._cache) > CACHE_ENTRIES:
            self._cache.popitem(last=False)
        return _answer(result)

    async def _make(self, user_id: str, url: str) -> dict[str, Any]:
        try:
            page = await self.fetch(url)
        except FetchError as e:
            log.info("URL preview of %s refused or failed: %s", url, e)
            raise MatrixError(502, "M_UNKNOWN", f"Could not preview the URL: {e}") from None
        if not 200 <= page.status < 300:
            raise MatrixError(502, "M_UNKNOWN", f"The URL answered {page.status}")
        if page.content_type.startswith("image/"):
            return await self._image_preview(user_id, page, page.url)
        if page.content_type not in ("text/html", "application/xhtml+xml"):
            return {}
        og = open_graph(page.body, page.charset)
        image = og.pop("og:image", None)
        if isinstance(image, str) and image:
            image_url = urllib.parse.urljoin(page.url, image)
            try:
                fetched = await self.fetch(image_url)
                if 200 <= fetched.status < 300 and fetched.content_type.startswith("image/"):
                    og.update(await self._image_preview(user_id, fetched, None))
            except (FetchError, MatrixError) as e:
                log.info("URL preview of %s: image %s not fetched: %s", url, image_url, e)
        return og

    async def _image_preview(
        self, user_id: str, image: Fetched, description: str | None
    ) -> dict[str, Any]:
        async def chunks() -> AsyncIterator[bytes]:
            yield image.body

        mxc = await self.media.upload(
            user_id, chunks(), content_type=image.content_type, filename=None,
            content_length=len(image.body),
        )  # fmt: skip
        found: dict[str, Any] = {
            "og:image": mxc,
            "og:image:type": image.content_type,
            "matrix:image:size": len(image.body),
        }
        if description:
            found["og:description"] = description
        return found

    # ------------------------------------------------------------------ fetching

    def allowed(self, address: str) -> bool:
        ip = ipaddress.ip_address(address)
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if any(ip in network for network in self._allowed):
            return True
        return not is_private(str(ip)) and not any(ip in network for network in self._denied)

    async def _address(self, host: str, port: int) -> str:
        try:
            candidates = await resolve(host, port)
        except OSError as e:
            raise FetchError(f"cannot resolve {host}: {e}") from None
        denied = [a for a in candidates if not self.allowed(a)]
        if denied or not candidates:
            raise FetchError(f"{host} resolves to a denied address ({', '.join(denied)})")
        return candidates[0]

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=50, limit_per_host=4),
                headers={"User-Agent": USER_AGENT, "Accept-Language": "ja, en;q=0.8"},
                auto_decompress=True,
            )
        return self._session

    async def fetch(self, url: str) -> Fetched:
        """GET ``url`` through the guard, following redirects by hand."""
        try:
            async with asyncio.timeout(self.settings.timeout_ms / 1000):
                for _ in range(MAX_REDIRECTS + 1):
                    fetched, location = await self._fetch_one(url)
                    if location is None:
                        return fetched
                    url = urllib.parse.urljoin(url, location)
        except TimeoutError:
            raise FetchError("timed out") from None
        raise FetchError("too many redirects")

    async def _fetch_one(self, url: str) -> tuple[Fetched, str | None]:
        try:
            target = yarl.URL(url)
        except ValueError:
            raise FetchError("not a valid URL") from None
        if target.scheme not in ("http", "https") or not target.host:
            raise FetchError("only http and https URLs are previewed")
        host = target.host.strip("[]")
        port = target.port or (443 if target.scheme == "https" else 80)
        address = await self._address(host, port)
        literal = f"[{address}]" if ":" in address else address
        connect_to = target.with_host(literal) if literal != target.host else target
        extra: dict[str, Any] = {}
        if target.scheme == "https":
            extra["server_hostname"] = host
        headers = {"Host": target.raw_authority}
        try:
            async with self._http().get(
                connect_to, headers=headers, allow_redirects=False, **extra
            ) as response:
                if response.status in (301, 302, 303, 307, 308):
                    location = response.headers.get("Location")
                    if not location:
                        raise FetchError(f"redirect {response.status} without a Location")
                    return Fetched(url, response.status, "", None, b""), location
                body = await _read_at_most(response, self.settings.max_size)
                return Fetched(
                    url, response.status, response.content_type.lower(), response.charset, body
                ), None
        except (aiohttp.ClientError, OSError, ValueError) as e:
            raise FetchError(f"{type(e).__name__}: {e}") from None


async def _read_at_most(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The body's first ``limit`` bytes; the rest is not read (the connection is closed)."""
    body = bytearray()
    async for chunk in response.content.iter_chunked(64 * 1024):
        body += chunk
        if len(body) >= limit:
            response.close()
            return bytes(body[:limit])
    return bytes(body)


def _answer(result: dict[str, Any] | MatrixError) -> dict[str, Any]:
    if isinstance(result, MatrixError):
        raise result
    return dict(result)
