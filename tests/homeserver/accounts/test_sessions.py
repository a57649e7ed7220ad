"""Refresh tokens (/refresh) and login tokens (/login/get_token) over real HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from homeserver.config import Sessions
from tests.homeserver.conftest import Node, running_node
from tests.homeserver.openapi import ClientServerSpec, ValidatingClient

V3 = "/_matrix/client/v3"
WHOAMI = V3 + "/account/whoami"


@pytest.fixture
async def short_node(tmp_path: Path, db_url: str) -> AsyncIterator[Node]:
    """A node whose refreshable access tokens live 600 ms and that hands out login tokens."""
    sessions = Sessions(refreshable_access_token_lifetime_ms=600, login_token_enabled=True)
    async with running_node(tmp_path / "node", db_url, sessions=sessions) as node:
        yield node


@pytest.fixture
async def c(short_node: Node, openapi: ClientServerSpec | None) -> AsyncIterator[ValidatingClient]:
    client = ValidatingClient(short_node.base_url, openapi)
    try:
        yield client
    finally:
        assert client.mismatches == []
        await client.close()


async def _login(c: ValidatingClient, user: str, **extra: Any) -> Any:
    return await c.ok(
        "POST",
        V3 + "/login",
        {
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": user},
            "password": "correct horse",
            **extra,
        },
    )


async def test_refresh_token_flow(c: ValidatingClient) -> None:
    await c.register("alice")
    plain = await _login(c, "alice")
    assert "refresh_token" not in plain and "expires_in_ms" not in plain
    login = await _login(c, "alice", refresh_token=True)
    assert login["expires_in_ms"] == 600 and login["refresh_token"]
    assert (await c.ok("GET", WHOAMI, token=login["access_token"]))["device_id"] == login[
        "device_id"
    ]
    # Refresh: a new pair; the old refresh token still works until the new access token is
    # used, and the device stays the same.
    first = await c.ok("POST", V3 + "/refresh", {"refresh_token": login["refresh_token"]})
    assert first["expires_in_ms"] == 600 and first["refresh_token"] != login["refresh_token"]
    again = await c.ok("POST", V3 + "/refresh", {"refresh_token": login["refresh_token"]})
    who = await c.ok("GET", WHOAMI, token=again["access_token"])
    assert who["device_id"] == login["device_id"]
    # ``again`` replaced ``first``: first's tokens are gone.
    gone = await c.request("POST", V3 + "/refresh", {"refresh_token": first["refresh_token"]})
    assert gone.status == 401 and gone.body["errcode"] == "M_UNKNOWN_TOKEN"
    # The new access token was used: the old refresh token is revoked.
    used = await c.request("POST", V3 + "/refresh", {"refresh_token": login["refresh_token"]})
    assert used.status == 401 and used.body["errcode"] == "M_UNKNOWN_TOKEN"
    assert used.body["soft_logout"] is True
    # Expiry: 401 M_UNKNOWN_TOKEN with soft_logout; the plain token lives on.
    await asyncio.sleep(0.7)
    expired = await c.request("GET", WHOAMI, token=again["access_token"])
    assert expired.status == 401 and expired.body["errcode"] == "M_UNKNOWN_TOKEN"
    assert expired.body["soft_logout"] is True
    await c.ok("GET", WHOAMI, token=plain["access_token"])
    # Refreshing after expiry still works (the refresh token does not expire by default).
    renewed = await c.ok("POST", V3 + "/refresh", {"refresh_token": again["refresh_token"]})
    await c.ok("GET", WHOAMI, token=renewed["access_token"])
    # Logout removes the access token and the refresh token.
    await c.ok("POST", V3 + "/logout", {}, token=renewed["access_token"])
    after = await c.request("POST", V3 + "/refresh", {"refresh_token": renewed["refresh_token"]})
    assert after.status == 401 and after.body["errcode"] == "M_UNKNOWN_TOKEN"


async def test_register_with_refresh_token(c: ValidatingClient) -> None:
    body = await c.ok(
        "POST",
        V3 + "/register",
        {
            "username": "bob",
            "password": "correct horse",
            "auth": {"type": "m.login.dummy"},
            "refresh_token": True,
        },
    )
    assert body["expires_in_ms"] == 600
    refreshed = await c.ok("POST", V3 + "/refresh", {"refresh_token": body["refresh_token"]})
    assert (await c.ok("GET", WHOAMI, token=refreshed["access_token"]))["user_id"] == "@bob:" + (
        body["user_id"].split(":", 1)[1]
    )


async def test_refresh_bad_input(c: ValidatingClient) -> None:
    for body in ({}, {"refresh_token": 5}, {"refresh_token": None}):
        r = await c.request("POST", V3 + "/refresh", body)
        assert r.status == 400, (body, r)
    r = await c.request("POST", V3 + "/refresh", {"refresh_token": "kair_not-a-token"})
    assert r.status == 401 and r.body["errcode"] == "M_UNKNOWN_TOKEN"
    # An access token is no refresh token, and the reverse.
    alice = await c.register("alice")
    r = await c.request("POST", V3 + "/refresh", {"refresh_token": alice.token})
    assert r.status == 401
    login = await _login(c, "alice", refresh_token=True)
    r = await c.request("GET", WHOAMI, token=login["refresh_token"])
    assert r.status == 401 and r.body["errcode"] == "M_UNKNOWN_TOKEN"
    r = await c.request("POST", V3 + "/login", {"type": "m.login.password",
                        "identifier": {"type": "m.id.user", "user": "alice"},
                        "password": "correct horse", "refresh_token": "yes"})  # fmt: skip
    assert r.status == 400 and r.body["errcode"] == "M_BAD_JSON"


async def test_password_change_drops_refresh_tokens(c: ValidatingClient) -> None:
    alice = await c.register("alice")
    other = await _login(c, "alice", refresh_token=True)
    auth = {"type": "m.login.password", "user": "alice", "password": "correct horse"}
    await c.ok(
        "POST", V3 + "/account/password",
        {"new_password": "new horse staple", "auth": auth}, token=alice.token,
    )  # fmt: skip
    r = await c.request("POST", V3 + "/refresh", {"refresh_token": other["refresh_token"]})
    assert r.status == 401


async def test_get_login_token(c: ValidatingClient, short_node: Node) -> None:
    alice = await c.register("alice")
    flows = (await c.ok("GET", V3 + "/login"))["flows"]
    assert {"type": "m.login.token", "get_login_token": True} in flows
    caps = (await c.ok("GET", V3 + "/capabilities", token=alice.token))["capabilities"]
    assert caps["m.get_login_token"] == {"enabled": True}
    path = "/_matrix/client/v1/login/get_token"
    # UIA first (always, as the spec says), then the token.
    challenge = await c.request("POST", path, {}, token=alice.token)
    assert challenge.status == 401 and challenge.body["flows"] == [{"stages": ["m.login.password"]}]
    wrong = {"type": "m.login.password", "password": "wrong", "session": challenge.body["session"]}
    r = await c.request("POST", path, {"auth": wrong}, token=alice.token)
    assert r.status == 401 and r.body["errcode"] == "M_FORBIDDEN"
    auth = {"type": "m.login.password", "password": "correct horse",
            "session": challenge.body["session"]}  # fmt: skip
    body = await c.ok("POST", path, {"auth": auth}, token=alice.token)
    assert body["expires_in_ms"] == 300_000
    login = await c.ok(
        "POST", V3 + "/login", {"type": "m.login.token", "token": body["login_token"]}
    )
    assert login["user_id"] == alice.user_id and login["device_id"] != alice.device_id
    # Once only.
    r = await c.request(
        "POST", V3 + "/login", {"type": "m.login.token", "token": body["login_token"]}
    )
    assert r.status == 403 and r.body["errcode"] == "M_FORBIDDEN"
    # One a minute (Synapse's limit).
    auth.pop("session")
    r = await c.request("POST", path, {"auth": auth}, token=alice.token)
    assert r.status == 429 and r.body["errcode"] == "M_LIMIT_EXCEEDED"
    for bad in ({"type": "m.login.token"}, {"type": "m.login.token", "token": 3},
                {"type": "m.login.token", "token": "kail_nothing"}):  # fmt: skip
        r = await c.request("POST", V3 + "/login", bad)
        assert r.status in (400, 403), (bad, r)


async def test_get_login_token_off_by_default(node: Node, openapi: ClientServerSpec | None) -> None:
    async with ValidatingClient(node.base_url, openapi) as c:
        alice = await c.register("alice")
        assert (await c.ok("GET", V3 + "/login"))["flows"] == [{"type": "m.login.password"}]
        caps = (await c.ok("GET", V3 + "/capabilities", token=alice.token))["capabilities"]
        assert caps["m.get_login_token"] == {"enabled": False}
        r = await c.request("POST", "/_matrix/client/v1/login/get_token", {}, token=alice.token)
        assert r.status == 404 and r.body["errcode"] == "M_UNRECOGNIZED"
        # Not asking for a refresh token: a token that never expires, as before.
        body = await _login(c, "alice")
        assert "expires_in_ms" not in body
