"""Rate limits: 429 M_LIMIT_EXCEEDED with retry_after_ms and Retry-After, per user and per IP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from homeserver.common.errors import MatrixError
from homeserver.common.http import RateLimiter
from tests.homeserver.client import Client, Response, User
from tests.homeserver.conftest import Node, running_node

BURST = 3


@pytest.fixture
async def limited(tmp_path: Path, db_url: str) -> AsyncIterator[Node]:
    """A node allowing bursts of 3 requests and then one request every 100 seconds."""
    async with running_node(tmp_path / "limited", db_url) as node:
        # start_node sets a generous limit for the other tests; this node gets a small one.
        node.services.rate_limiter.per_second = 0.01
        node.services.rate_limiter.burst = BURST
        yield node


@pytest.fixture
async def client(limited: Node) -> AsyncIterator[Client]:
    async with limited.client() as c:
        yield c


async def user(node: Node, client: Client, localpart: str, device: str = "D1") -> User:
    """An account and token made without HTTP, so no request spends the IP's allowance."""
    user_id = await node.services.admin.add_user(localpart, "pw")
    token, device_id = await node.services.accounts.login(user_id, device, None, None)
    return User(client, user_id, token, device_id)


def assert_limited(response: Response) -> None:
    assert response.status == 429, response
    assert response.body["errcode"] == "M_LIMIT_EXCEEDED"
    retry_ms = response.body["retry_after_ms"]
    assert isinstance(retry_ms, int) and 0 < retry_ms <= 100_000
    assert int(response.headers["Retry-After"]) == (retry_ms + 999) // 1000


async def test_per_user(limited: Node, client: Client) -> None:
    alice = await user(limited, client, "alice")
    bob = await user(limited, client, "bob")
    path = "/_matrix/client/v3/user/{}/filter"
    for _ in range(BURST):
        await alice.ok("POST", path.format(alice.user_id), {})
    assert_limited(await alice.request("POST", path.format(alice.user_id), {}))
    # Another device of Alice's shares her allowance...
    phone = await limited.services.accounts.login(alice.user_id, "PHONE", None, None)
    assert_limited(await client.request("POST", path.format(alice.user_id), {}, token=phone[0]))
    # ...Bob has his own, and reading is never limited.
    for _ in range(BURST):
        await bob.ok("POST", path.format(bob.user_id), {})
    assert_limited(await bob.request("POST", path.format(bob.user_id), {}))
    assert (await alice.ok("GET", "/_matrix/client/v3/account/whoami"))["user_id"] == alice.user_id


async def test_per_ip(limited: Node, client: Client) -> None:
    login = {"type": "m.login.password", "user": "nobody", "password": "wrong"}
    for _ in range(BURST):
        response = await client.request("POST", "/_matrix/client/v3/login", login)
        assert response.status == 403
    assert_limited(await client.request("POST", "/_matrix/client/v3/login", login))
    # A bad token counts against the IP too, and is still limited rather than let through.
    bad = await client.request("POST", "/_matrix/client/v3/logout", {}, token="kai_bogus")
    assert_limited(bad)
    # A logged-in user from the same address is limited on their own bucket, not the IP's.
    alice = await user(limited, client, "alice")
    created = await alice.ok("POST", f"/_matrix/client/v3/user/{alice.user_id}/filter", {})
    assert created["filter_id"]


def test_bucket_refills() -> None:
    """The token bucket itself: the burst, then the retry time the rate implies."""
    limiter = RateLimiter(per_second=2.0, burst=2)
    limiter.check("k")
    limiter.check("k")
    with pytest.raises(MatrixError) as caught:
        limiter.check("k")
    assert caught.value.errcode == "M_LIMIT_EXCEEDED"
    retry_ms = caught.value.to_json()["retry_after_ms"]
    assert isinstance(retry_ms, int) and 0 < retry_ms <= 501
    limiter.check("other")  # keys are independent
