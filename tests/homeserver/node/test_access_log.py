"""The development node's request log (homeserver/node/access_log.py): one line per request,
access tokens never in it."""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from homeserver.config import load_config
from homeserver.node.access_log import redact_query
from homeserver.node.app import build_services, close_services, make_app
from homeserver.node.setup import init_node
from tests.homeserver.client import Client

V3 = "/_matrix/client/v3"
LOGGER = "homeserver.node.access_log"
LINE = re.compile(r"^(GET|POST|PUT|DELETE) (\S+) (\d{3}) \d+\.\dms$")


async def serving(tmp_path: Path, access_log: bool) -> AsyncIterator[Client]:
    """A node on SQLite, served as ``kairan serve`` serves it (no aiohttp access log)."""
    init_node("localhost:8008", tmp_path, enable_registration=True)
    config = dataclasses.replace(
        load_config(tmp_path), database=f"sqlite+aiosqlite:///{tmp_path / 'kairan.db'}"
    )
    services = await build_services(config, fast_passwords=True)
    server = TestServer(make_app(services, access_log=access_log))
    await server.start_server(access_log=None)
    try:
        async with Client(str(server.make_url("")).rstrip("/")) as client:
            yield client
    finally:
        await server.close()
        await close_services(services)


def request_lines(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str, int]]:
    lines = []
    for record in caplog.records:
        if record.name == LOGGER:
            match = LINE.match(record.getMessage())
            assert match, record.getMessage()
            lines.append((match[1], match[2], int(match[3])))
    return lines


async def test_each_request_is_one_line_without_its_token(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async for client in serving(tmp_path, access_log=True):
        alice = await client.register("alice")
        token = alice.token
        # (The node takes the token from the Authorization header only; clients may still
        # send the deprecated query parameter.)
        query = await client.request("GET", f"{V3}/account/whoami", params={"access_token": token})
        assert (await alice.request("GET", f"{V3}/account/whoami")).status == 200
        assert (await client.request("GET", f"{V3}/no_such_thing")).status == 404
        versions = await client.request("GET", f"/_matrix/client/versions?a=1&access_token={token}")
        assert versions.status == 200
    lines = request_lines(caplog)
    assert ("GET", f"{V3}/account/whoami?access_token=<redacted>", query.status) in lines
    assert ("GET", f"{V3}/account/whoami", 200) in lines  # the token in the header
    assert ("GET", f"{V3}/no_such_thing", 404) in lines
    assert ("GET", "/_matrix/client/versions?a=1&access_token=<redacted>", 200) in lines
    assert any(method == "POST" and path == f"{V3}/register" for method, path, _ in lines)
    assert token not in caplog.text


async def test_off_unless_asked_for(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async for client in serving(tmp_path, access_log=False):
        assert (await client.request("GET", "/_matrix/client/versions")).status == 200
    assert request_lines(caplog) == []


def test_redact_query() -> None:
    assert redact_query("") == ""
    assert redact_query("access_token=abc") == "access_token=<redacted>"
    assert redact_query("since=s1&access_token=abc&timeout=0") == (
        "since=s1&access_token=<redacted>&timeout=0"
    )
    assert redact_query("access_token") == "access_token=<redacted>"
    assert redact_query("access%5ftoken=abc") == "access%5ftoken=<redacted>"
    assert redact_query("my_access_token=abc&token=x") == "my_access_token=abc&token=x"
