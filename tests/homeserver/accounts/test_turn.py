"""GET /voip/turnServer over HTTP on both databases: coturn ``use-auth-secret``
credentials (checked here as coturn checks them), a fixed user, and Synapse's empty answer
with no TURN server; the secret never appears in logs or the config's repr.  And the
configuration sections of issue 12 (turn, presence, url_preview) as kairan.yaml gives them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from homeserver.config import ConfigError, parse_config
from homeserver.config.model import TurnSettings
from tests.homeserver.conftest import Node, running_node
from tests.homeserver.openapi import ClientServerSpec, SchemaMismatch, ValidatingClient

TURN = "/_matrix/client/v3/voip/turnServer"
SECRET = "s3cr3t-不可視"
URIS = ("turn:turn.example.jp:3478?transport=udp", "turns:turn.example.jp:5349")


@pytest.fixture
async def turn_node(tmp_path: Path, db_url: str) -> AsyncIterator[Node]:
    settings = TurnSettings(uris=URIS, shared_secret=SECRET, user_lifetime_ms=86_400_000)
    async with running_node(tmp_path / "node", db_url, turn=settings) as started:
        yield started


async def test_turn_credentials_with_a_shared_secret(
    turn_node: Node, openapi: ClientServerSpec | None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with ValidatingClient(turn_node.base_url, openapi) as c:
        alice = await c.register("alice")
        before = int(time.time())
        answer = await alice.ok("GET", TURN)
        assert answer["uris"] == list(URIS) and answer["ttl"] == 86_400
        expiry, user_id = answer["username"].split(":", 1)
        assert user_id == alice.user_id
        assert before + 86_400 <= int(expiry) <= int(time.time()) + 86_400
        # What coturn computes from its static-auth-secret.
        expected = hmac.new(SECRET.encode(), answer["username"].encode(), hashlib.sha1).digest()
        assert base64.b64decode(answer["password"]) == expected
        assert (await c.request("GET", TURN)).status == 401
        c.check(f"GET {TURN}")
    assert SECRET not in caplog.text
    assert SECRET not in repr(turn_node.services.config)


async def test_no_turn_server_is_the_empty_answer(
    node: Node, openapi: ClientServerSpec | None
) -> None:
    async with node.client() as c:
        alice = await c.register("alice")
        answer = await alice.request("GET", TURN)
        assert (answer.status, answer.body) == (200, {})
        if openapi is not None:
            # Synapse's answer, which voip.yaml's schema (all four fields required) does not
            # allow; clients read it as "no TURN server".
            with pytest.raises(SchemaMismatch):
                openapi.validate("GET", TURN, 200, answer.body)


def test_issue_12_config_sections(tmp_path: Path) -> None:
    base = {"server_name": "example.jp"}
    config = parse_config(
        {
            **base,
            "turn": {"uris": list(URIS), "username": "u", "password": "p", "user_lifetime": "1d"},
            "presence": {"enabled": False, "idle_timeout": "10m"},
            "url_preview": {"enabled": True, "ip_range_allowlist": ["127.0.0.1/32"],
                            "max_size": "1M", "timeout": "5s"},
        },
        tmp_path,
    )  # fmt: skip
    assert config.turn.user_lifetime_ms == 86_400_000 and config.turn.password == "p"
    assert not config.presence.enabled and config.presence.idle_timeout_ms == 600_000
    assert config.presence.sync_online_timeout_ms == 30_000
    assert config.url_preview.enabled and config.url_preview.max_size == 1024 * 1024
    assert config.url_preview.ip_range_allowlist == ("127.0.0.1/32",)
    defaults = parse_config(base, tmp_path)
    assert defaults.presence.enabled and not defaults.url_preview.enabled
    assert defaults.turn.uris == ()
    for bad in (
        {"turn": {"uris": "turn:x"}},
        {"turn": {"secret": "x"}},
        {"presence": {"enabled": "yes"}},
        {"url_preview": {"ip_range_denylist": ["not a range"]}},
        {"url_preview": {"max_size": -1}},
    ):
        with pytest.raises(ConfigError):
            parse_config({**base, **bad}, tmp_path)
