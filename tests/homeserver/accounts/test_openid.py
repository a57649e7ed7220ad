"""OpenID tokens over HTTP on both databases: a user asks for one (for themselves only), a
third party exchanges it at /_matrix/federation/v1/openid/userinfo for the user's ID while
it is valid; unknown, missing and expired tokens are 401; only hashes are stored."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import select

from homeserver.storage.schema import openid_tokens
from tests.homeserver.conftest import Node
from tests.homeserver.openapi import ClientServerSpec, ValidatingClient

USERINFO = "/_matrix/federation/v1/openid/userinfo"


def request_path(user_id: str) -> str:
    return f"/_matrix/client/v3/user/{quote(user_id)}/openid/request_token"


class Later:
    """The node's clock, two hours on."""

    def now_ms(self) -> int:
        return int(time.time() * 1000) + 2 * 3600 * 1000


async def test_openid_tokens(
    node: Node, openapi: ClientServerSpec | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The user info endpoint is the server-server API's: asked with a plain client.
    async with ValidatingClient(node.base_url, openapi) as c, node.client() as third_party:
        alice = await c.register("alice")
        mallory = await c.register("mallory")
        token: dict[str, Any] = await alice.ok("POST", request_path(alice.user_id), {})
        assert token["token_type"] == "Bearer" and token["expires_in"] == 3600
        assert token["matrix_server_name"] == node.server_name
        info = await third_party.request(
            "GET", USERINFO, params={"access_token": token["access_token"]}
        )
        assert (info.status, info.body) == (200, {"sub": alice.user_id})

        # The attacker's side.
        theirs = await mallory.request("POST", request_path(alice.user_id), {})
        assert (theirs.status, theirs.body["errcode"]) == (403, "M_FORBIDDEN")
        no_auth = await c.request("POST", request_path(alice.user_id), {})
        assert no_auth.status == 401
        for params, errcode in (
            ({"access_token": "guessed"}, "M_UNKNOWN_TOKEN"),
            ({"access_token": alice.token}, "M_UNKNOWN_TOKEN"),  # not an access token
            ({}, "M_MISSING_TOKEN"),
            ({"access_token": "x" * 5000}, "M_UNKNOWN_TOKEN"),
        ):
            answer = await third_party.request("GET", USERINFO, params=params)
            assert (answer.status, answer.body["errcode"]) == (401, errcode), params
        async with node.services.db.read() as conn:
            stored = (await conn.execute(select(openid_tokens))).all()
        assert len(stored) == 1 and token["access_token"].encode() not in stored[0].token_sha256

        # Two hours later it is no longer valid.
        monkeypatch.setattr(node.services.openid, "clock", Later())
        expired = await third_party.request(
            "GET", USERINFO, params={"access_token": token["access_token"]}
        )
        assert (expired.status, expired.body["errcode"]) == (401, "M_UNKNOWN_TOKEN")
        c.check("POST /_matrix/client/v3/user/{userId}/openid/request_token")
