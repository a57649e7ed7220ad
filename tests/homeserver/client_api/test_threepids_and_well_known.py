"""/.well-known/matrix/support and /server from the config, and the refused 3PID requests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from homeserver.config import ConfigError, SupportContact, WellKnown, parse_config
from tests.homeserver.conftest import Node, running_node
from tests.homeserver.openapi import ClientServerSpec, ValidatingClient

V3 = "/_matrix/client/v3"


@pytest.fixture
def c(vclient: ValidatingClient) -> ValidatingClient:
    return vclient  # tests/homeserver/conftest.py: every response checked


async def test_well_known_unset_is_404(c: ValidatingClient, node: Node) -> None:
    r = await c.request("GET", "/.well-known/matrix/support")
    assert r.status == 404 and r.body["errcode"] == "M_NOT_FOUND"
    async with node.client() as plain:  # a server-server document: not in the C-S spec
        r = await plain.request("GET", "/.well-known/matrix/server")
        assert r.status == 404 and r.body["errcode"] == "M_NOT_FOUND"


async def test_well_known_from_config(
    tmp_path: Path, db_url: str, openapi: ClientServerSpec | None
) -> None:
    well_known = WellKnown(
        server="matrix.example.org:443",
        contacts=(
            SupportContact("m.role.admin", matrix_id="@root:example.org"),
            SupportContact("m.role.security", email_address="security@example.org"),
        ),
        support_page="https://example.org/support",
    )
    async with (
        running_node(tmp_path / "n", db_url, well_known=well_known) as node,
        ValidatingClient(node.base_url, openapi) as c,
    ):
        async with node.client() as plain:
            assert await plain.ok("GET", "/.well-known/matrix/server") == {
                "m.server": "matrix.example.org:443"
            }
        assert await c.ok("GET", "/.well-known/matrix/support") == {
            "contacts": [
                {"role": "m.role.admin", "matrix_id": "@root:example.org"},
                {"role": "m.role.security", "email_address": "security@example.org"},
            ],
            "support_page": "https://example.org/support",
        }
        assert c.mismatches == []


def test_well_known_config_is_checked(tmp_path: Path) -> None:
    base: dict[str, Any] = {"server_name": "example.org"}
    parsed = parse_config(
        {**base, "well_known": {"server": "m.example.org:443",
                                "support": {"contacts": [{"role": "m.role.admin",
                                                          "email_address": "a@example.org"}]}}},
        tmp_path,
    )  # fmt: skip
    assert parsed.well_known.server == "m.example.org:443"
    assert parsed.well_known.contacts == (SupportContact("m.role.admin", None, "a@example.org"),)
    for bad in (
        {"well_known": {"servr": "x"}},
        {"well_known": {"server": 5}},
        {"well_known": {"support": {"contacts": [{"role": "m.role.admin"}]}}},
        {"well_known": {"support": {"contacts": [{"matrix_id": "@a:b"}]}}},
        {"login_via_existing_session": {"enabled": "yes"}},
        {"refreshable_access_token_lifetime": "soon"},
    ):
        with pytest.raises(ConfigError):
            parse_config({**base, **bad}, tmp_path)
    sessions = parse_config(
        {**base, "refreshable_access_token_lifetime": "10m", "refresh_token_lifetime": "30d",
         "login_via_existing_session": {"enabled": True, "token_timeout": "1m"}},
        tmp_path,
    ).sessions  # fmt: skip
    assert sessions.refreshable_access_token_lifetime_ms == 600_000
    assert sessions.refresh_token_lifetime_ms == 30 * 86_400_000
    assert sessions.login_token_enabled and sessions.login_token_timeout_ms == 60_000


async def test_threepid_changes_are_refused(c: ValidatingClient) -> None:
    alice = await c.register("alice")
    assert await c.ok("GET", V3 + "/account/3pid", token=alice.token) == {"threepids": []}
    caps = (await c.ok("GET", V3 + "/capabilities", token=alice.token))["capabilities"]
    assert caps["m.3pid_changes"] == {"enabled": False}
    creds = {"client_secret": "s3cret", "sid": "1", "auth": {"type": "m.login.dummy"}}
    token_body = {"client_secret": "s3cret", "email": "a@example.org", "send_attempt": 1}
    msisdn_body = {"client_secret": "s3cret", "country": "JP", "phone_number": "0312345678",
                   "send_attempt": 1}  # fmt: skip
    for path, body in (
        ("/account/3pid/add", creds),
        ("/account/3pid/delete", {"medium": "email", "address": "a@example.org"}),
        ("/account/3pid/email/requestToken", token_body),
        ("/account/3pid/msisdn/requestToken", msisdn_body),
    ):
        for token in (alice.token, None):
            r = await c.request("POST", V3 + path, body, token=token)
            assert r.status == 400 and r.body["errcode"] == "M_FORBIDDEN", (path, r)
            assert r.body["error"] == "3PID changes are disabled on this server"
    for path, body in (
        ("/register/email/requestToken", token_body),
        ("/register/msisdn/requestToken", msisdn_body),
        ("/account/password/email/requestToken", token_body),
        ("/account/password/msisdn/requestToken", msisdn_body),
    ):
        r = await c.request("POST", V3 + path, body)
        assert r.status == 400 and r.body["errcode"] == "M_THREEPID_MEDIUM_NOT_SUPPORTED", r
    bind = {"client_secret": "s", "id_server": "id.example.org", "id_access_token": "t",
            "sid": "1"}  # fmt: skip
    r = await c.request("POST", V3 + "/account/3pid/bind", bind)
    assert r.status == 401
    r = await c.request("POST", V3 + "/account/3pid/bind", bind, token=alice.token)
    assert r.status == 400 and r.body["errcode"] == "M_SERVER_NOT_TRUSTED"
    unbind = {"medium": "email", "address": "a@example.org"}
    r = await c.request("POST", V3 + "/account/3pid/unbind", unbind)
    assert r.status == 401
    assert await c.ok("POST", V3 + "/account/3pid/unbind", unbind, token=alice.token) == {
        "id_server_unbind_result": "no-support"
    }


async def test_third_party_invites_are_refused(c: ValidatingClient) -> None:
    alice = await c.register("alice")
    invite = {"id_server": "id.example.org", "id_access_token": "t", "medium": "email",
              "address": "bob@example.org"}  # fmt: skip
    r = await c.request("POST", V3 + "/createRoom", {"invite_3pid": [invite]}, token=alice.token)
    assert r.status == 400 and r.body["errcode"] == "M_FORBIDDEN"
    assert "identity server" in r.body["error"]
    rooms = await c.ok("GET", V3 + "/joined_rooms", token=alice.token)
    assert rooms["joined_rooms"] == []  # refused before any room was made
    room = (await c.ok("POST", V3 + "/createRoom", {"invite_3pid": []}, token=alice.token))[
        "room_id"
    ]
    r = await c.request("POST", f"{V3}/rooms/{room}/invite", invite, token=alice.token)
    assert r.status == 403 and r.body["errcode"] == "M_FORBIDDEN"
    assert "identity server" in r.body["error"]
    r = await c.request("POST", f"{V3}/rooms/{room}/invite", {}, token=alice.token)
    assert r.status == 400
