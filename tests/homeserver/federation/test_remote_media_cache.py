"""The cache of other servers' media is bounded: least recently used files go when it is
over its size, media not accessed for its lifetime go, an admin can purge it by last
access, and a file being served is never removed.  Two real nodes over HTTPS."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import pytest
from PIL import Image

from homeserver.config import ConfigError, RemoteMediaCache, parse_config
from homeserver.federation.media import FederatedMedia
from homeserver.federation.media_cache import ACCESS_GRANULARITY_MS
from homeserver.storage import remote_cache
from tests.homeserver.client import Client, User
from tests.homeserver.conftest import Node, two_nodes
from tests.homeserver.federation.test_federation_media import assert_error, upload

V1 = "/_matrix/client/v1/media"
LEGACY = "/_matrix/media/v3"
PURGE = "/_kairan/admin/v1/purge_media_cache"
SIZE = 1000


@pytest.fixture
async def pair(tmp_path: Path, db_url: str, db_url_b: str) -> AsyncIterator[tuple[Node, Node]]:
    """B keeps at most 2.5 files of SIZE bytes, and nothing unused for a day."""
    cache = RemoteMediaCache(max_size=SIZE * 5 // 2, lifetime_ms=86_400_000)
    async for nodes in two_nodes(tmp_path, db_url, db_url_b, remote_media_cache=cache):
        yield nodes


def cache_of(node: Node) -> FederatedMedia:
    return cast(FederatedMedia, node.services.media.remote)


@contextmanager
def later(node: Node, ms: int) -> Iterator[None]:
    """The node's clock ``ms`` ahead while inside."""
    clock = node.services.clock
    real = clock.now_ms
    clock.now_ms = lambda: real() + ms  # type: ignore[method-assign]
    try:
        yield
    finally:
        clock.now_ms = real  # type: ignore[method-assign]


def padded_png(n: int) -> bytes:
    """A small PNG (a distinct colour per n) padded to SIZE bytes (decoders stop at IEND)."""
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (n * 40 % 256, 30, 30)).save(out, "PNG")
    data = out.getvalue()
    assert len(data) < SIZE
    return data + b"\0" * (SIZE - len(data))


async def cached(node: Node, server: str, media_id: str) -> remote_cache.RemoteMedia | None:
    async with node.services.db.read() as conn:
        return await remote_cache.get_media(conn, server, media_id)


async def download(user: User, server: str, media_id: str) -> bytes:
    got = await user.request("GET", f"{V1}/download/{server}/{media_id}")
    assert got.status == 200, got
    assert isinstance(got.body, bytes)
    return got.body


async def setup(a: Node, b: Node, ca: Client, cb: Client) -> tuple[User, list[str], str]:
    alice = await ca.register("alice")
    bob = await cb.register("bob")
    media = [await upload(alice, padded_png(n), "image/png", f"{n}.png") for n in range(3)]
    return bob, [m for _, m in media], a.server_name


async def test_least_recently_used_goes_when_over_the_size(pair: tuple[Node, Node]) -> None:
    a, b = pair
    async with a.client() as ca, b.client() as cb:
        bob, (m0, m1, m2), server = await setup(a, b, ca, cb)
        cache = cache_of(b).cache
        assert await download(bob, server, m0) == padded_png(0)
        with later(b, 2 * ACCESS_GRANULARITY_MS):
            assert await download(bob, server, m1) == padded_png(1)
            thumb = await bob.request(
                "GET", f"{V1}/thumbnail/{server}/{m1}", params={"width": "8", "height": "8"}
            )
            assert thumb.status == 200
        m1_row = await cached(b, server, m1)
        assert m1_row is not None
        m1_files = [cache.content_path(m1_row.file_id), cache.thumbnail_dir(m1_row.file_id)]
        assert all(p.exists() for p in m1_files)
        with later(b, 4 * ACCESS_GRANULARITY_MS):
            await download(bob, server, m0)  # m0 is now the most recently used
        await cache.settled()
        assert await cached(b, server, m1) is not None  # 2 files: within the size
        with later(b, 6 * ACCESS_GRANULARITY_MS):
            assert await download(bob, server, m2) == padded_png(2)
            await cache.settled()
        # Over the size: m1, the least recently used, is gone, row and files.
        assert await cached(b, server, m1) is None
        assert not any(p.exists() for p in m1_files)
        assert await cached(b, server, m0) is not None
        assert await cached(b, server, m2) is not None
        # Asked for again, it is fetched again (and now m0 is the one to go).
        with later(b, 8 * ACCESS_GRANULARITY_MS):
            assert await download(bob, server, m1) == padded_png(1)
            await cache.settled()
        assert await cached(b, server, m0) is None
        assert {(await cached(b, server, m)) is not None for m in (m1, m2)} == {True}


async def test_lifetime_and_files_in_use(pair: tuple[Node, Node]) -> None:
    a, b = pair
    async with a.client() as ca, b.client() as cb:
        bob, (m0, m1, _), server = await setup(a, b, ca, cb)
        media = cache_of(b)
        await download(bob, server, m0)
        await download(bob, server, m1)
        # A file being served is leased: it outlives its lifetime until it is sent.
        serving, _ = await media.fetch(server, m0)
        with later(b, 2 * 86_400_000):
            assert await media.cache.sweep() == 1
            assert await cached(b, server, m1) is None
            assert await cached(b, server, m0) is not None
            assert serving.path is not None and serving.path.read_bytes() == padded_png(0)
            serving.close()
            serving.close()  # closing twice releases once
            assert await media.cache.sweep() == 1
        assert await cached(b, server, m0) is None
        assert not serving.path.exists()
        assert await download(bob, server, m0) == padded_png(0)


async def test_admin_purge_by_last_access(pair: tuple[Node, Node]) -> None:
    a, b = pair
    async with a.client() as ca, b.client() as cb:
        bob, (m0, m1, _), server = await setup(a, b, ca, cb)
        await b.services.accounts.create_user("chief", "chief pw", admin=True)
        login = await cb.ok(
            "POST",
            "/_matrix/client/v3/login",
            {"type": "m.login.password", "user": "chief", "password": "chief pw"},
        )
        admin = User(cb, login["user_id"], login["access_token"], login["device_id"])
        for params, status, errcode in [
            ({}, 400, "M_MISSING_PARAM"),
            ({"before_ts": "soon"}, 400, "M_INVALID_PARAM"),
            ({"before_ts": "-5"}, 400, "M_INVALID_PARAM"),
            ({"before_ts": "1700000000"}, 400, "M_INVALID_PARAM"),  # seconds, not ms
        ]:
            assert_error(await admin.request("POST", PURGE, params=params), status, errcode)
        refused = await bob.request("POST", PURGE, params={"before_ts": "99999999999999"})
        assert_error(refused, 403, "M_FORBIDDEN")

        await download(bob, server, m0)
        with later(b, 2 * ACCESS_GRANULARITY_MS):
            await download(bob, server, m1)
        middle = b.services.clock.now_ms() + ACCESS_GRANULARITY_MS
        purged = await admin.ok("POST", PURGE, params={"before_ts": str(middle)})
        assert purged == {"deleted": 1}
        assert await cached(b, server, m0) is None
        assert await cached(b, server, m1) is not None
        assert await admin.ok("POST", PURGE, params={"before_ts": str(middle)}) == {"deleted": 0}
        m1_row = await cached(b, server, m1)
        assert m1_row is not None and cache_of(b).cache.content_path(m1_row.file_id).is_file()
        everything = str(b.services.clock.now_ms() + 10 * ACCESS_GRANULARITY_MS)
        assert await admin.ok("POST", PURGE, params={"before_ts": everything}) == {"deleted": 1}
        remote_files = (b.services.config.media_path / "remote_content").rglob("*")
        assert [f for f in remote_files if f.is_file()] == []
        assert await download(bob, server, m1) == padded_png(1)
        # A huge timestamp is fine (everything), never a database error.
        huge = await admin.ok("POST", PURGE, params={"before_ts": "9" * 19})
        assert huge == {"deleted": 1}


async def test_unfrozen_legacy_endpoints_fetch_remote_media(
    tmp_path: Path, db_url: str, db_url_b: str
) -> None:
    """With enable_authenticated_media off, the legacy endpoints serve and fetch remote
    media too (as Synapse), except with allow_remote=false."""
    async for a, b in two_nodes(tmp_path, db_url, db_url_b, enable_authenticated_media=False):
        async with a.client() as ca, b.client() as cb:
            bob, (m0, _, _), server = await setup(a, b, ca, cb)
            path = f"{LEGACY}/download/{server}/{m0}"
            no_remote = await cb.request("GET", path, params={"allow_remote": "false"})
            assert_error(no_remote, 404, "M_NOT_FOUND")
            got = await cb.request("GET", path)
            assert got.status == 200 and got.body == padded_png(0)
            row = await cached(b, server, m0)
            assert row is not None and row.authenticated is False
            await download(bob, server, m0)


def test_configuration(tmp_path: Path) -> None:
    base: dict[str, Any] = {"server_name": "kairan.example.jp"}
    parsed = parse_config(base, tmp_path)
    assert parsed.enable_authenticated_media is True
    assert parsed.remote_media_cache == RemoteMediaCache(max_size=10 * 1024**3, lifetime_ms=None)
    parsed = parse_config(
        {
            **base,
            "enable_authenticated_media": False,
            "remote_media_cache": {"max_size": "500M", "lifetime": "90d"},
        },
        tmp_path,
    )
    assert not parsed.enable_authenticated_media
    assert parsed.remote_media_cache == RemoteMediaCache(500 * 1024**2, 90 * 86_400_000)
    assert (
        parse_config(
            {**base, "remote_media_cache": {"lifetime": 3_600_000}}, tmp_path
        ).remote_media_cache.lifetime_ms
        == 3_600_000
    )
    for bad, says in [
        ({"enable_authenticated_media": "yes"}, "enable_authenticated_media"),
        ({"remote_media_cache": {"max_size": "lots"}}, "remote_media_cache.max_size"),
        ({"remote_media_cache": {"lifetime": "90 days"}}, "remote_media_cache.lifetime"),
        ({"remote_media_cache": {"lifetime": "0d"}}, "remote_media_cache.lifetime"),
        ({"remote_media_cache": {"max_files": 3}}, "unknown remote_media_cache keys"),
    ]:
        with pytest.raises(ConfigError, match=says):
            parse_config({**base, **bad}, tmp_path)
