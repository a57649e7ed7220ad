"""Limits on new passwords: Synapse's 512-character maximum always, and the optional policy
(minimum length, digit, symbol, lowercase, uppercase) refused with M_WEAK_PASSWORD, at
/register and /account/password; the admin API applies only the maximum, as Synapse's."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from homeserver.config import ConfigError, PasswordPolicy, load_config, parse_config
from tests.homeserver.client import Client, User
from tests.homeserver.conftest import Node, running_node

V3 = "/_matrix/client/v3"
POLICY = PasswordPolicy(
    enabled=True,
    minimum_length=10,
    require_digit=True,
    require_symbol=True,
    require_lowercase=True,
    require_uppercase=True,
)
GOOD = "Kairan-2026-回覧"


@pytest.fixture
async def strict_node(tmp_path: Path, db_url: str) -> AsyncIterator[Node]:
    async with running_node(tmp_path / "strict", db_url, password_policy=POLICY) as started:
        yield started


@pytest.fixture
async def client_for(strict_node: Node) -> AsyncIterator[Client]:
    async with strict_node.client() as c:
        yield c


async def register(client: Client, username: str, password: Any) -> tuple[int, Any]:
    body = {"username": username, "password": password, "auth": {"type": "m.login.dummy"}}
    response = await client.request("POST", f"{V3}/register", body)
    return response.status, response.body


async def change_password(user: User, new_password: str, password: str) -> tuple[int, Any]:
    body = {
        "new_password": new_password,
        "auth": {"type": "m.login.password", "user": user.user_id, "password": password},
    }
    response = await user.request("POST", f"{V3}/account/password", body)
    return response.status, response.body


async def can_log_in(client: Client, username: str, password: str) -> bool:
    body = {"type": "m.login.password", "user": username, "password": password}
    return (await client.request("POST", f"{V3}/login", body)).status == 200


async def test_length_limit_without_a_policy(node: Node, client: Client) -> None:
    status, body = await register(client, "long", "x" * 513)
    assert (status, body["errcode"]) == (400, "M_UNKNOWN")
    assert (await client.request("GET", f"{V3}/register/available?username=long")).status == 200
    # 512 characters (not bytes: this is 1,536 bytes of UTF-8) is the most there is.
    status, long = await register(client, "long", "回" * 512)
    assert status == 200, long
    assert await can_log_in(client, "long", "回" * 512)
    # No policy by default: a one-character password is fine.
    status, _ = await register(client, "short", "x")
    assert status == 200
    user = User(client, long["user_id"], long["access_token"], long["device_id"])
    status, refused = await change_password(user, "y" * 513, "回" * 512)
    assert (status, refused["errcode"]) == (400, "M_BAD_JSON")
    assert await can_log_in(client, "long", "回" * 512)
    status, _ = await change_password(user, "y", "回" * 512)
    assert status == 200 and await can_log_in(client, "long", "y")


@pytest.mark.parametrize(
    ("password", "says"),
    [
        ("Ab1-", "at least 10 characters"),
        ("Abcdefgh-ij", "digit"),
        ("Abcdefgh1ij", "symbol"),
        ("abcdefgh-1j", "uppercase"),
        ("ABCDEFGH-1J", "lowercase"),
        ("ＡＢＣ回覧板ですよ１２", "digit"),  # full-width letters and digits are not ASCII
    ],
)
async def test_policy_at_registration(
    strict_node: Node, client_for: Client, password: str, says: str
) -> None:
    # Refused before user-interactive auth starts (no session, no 401 first).
    response = await client_for.request(
        "POST", f"{V3}/register", {"username": "weak", "password": password}
    )
    assert (response.status, response.body["errcode"]) == (400, "M_WEAK_PASSWORD")
    assert says in response.body["error"]
    status, body = await register(client_for, "weak", password)
    assert (status, body["errcode"]) == (400, "M_WEAK_PASSWORD")
    status, body = await register(client_for, "weak", "Q" * 513)
    assert (status, body["errcode"]) == (400, "M_UNKNOWN")
    status, body = await register(client_for, "weak", GOOD)
    assert status == 200, body


async def test_policy_at_password_change_and_admin_api(
    strict_node: Node, client_for: Client
) -> None:
    status, body = await register(client_for, "yamada", GOOD)
    assert status == 200, body
    yamada = User(client_for, body["user_id"], body["access_token"], body["device_id"])
    # Refused before the UIA stage is asked for: no 401 with flows first.
    response = await yamada.request("POST", f"{V3}/account/password", {"new_password": "weak"})
    assert (response.status, response.body["errcode"]) == (400, "M_WEAK_PASSWORD")
    status, body = await change_password(yamada, "weak", GOOD)
    assert (status, body["errcode"]) == (400, "M_WEAK_PASSWORD")
    assert await can_log_in(client_for, "yamada", GOOD)
    status, body = await change_password(yamada, "Better-pw-2027", GOOD)
    assert status == 200, body
    assert await can_log_in(client_for, "yamada", "Better-pw-2027")

    # The admin API sets any password within the length limit (as Synapse's does).
    await strict_node.services.accounts.create_user("chief", GOOD, admin=True)
    login = await client_for.ok(
        "POST", f"{V3}/login", {"type": "m.login.password", "user": "chief", "password": GOOD}
    )
    admin = User(client_for, login["user_id"], login["access_token"], login["device_id"])
    path = f"/_kairan/admin/v1/users/{yamada.user_id}"
    too_long = await admin.request("PUT", path, {"password": "Z" * 513})
    assert (too_long.status, too_long.body["errcode"]) == (400, "M_UNKNOWN")
    assert await can_log_in(client_for, "yamada", "Better-pw-2027")
    await admin.ok("PUT", path, {"password": "simple"})
    assert await can_log_in(client_for, "yamada", "simple")


def test_policy_configuration(tmp_path: Path) -> None:
    base = {"server_name": "kairan.example.jp"}
    assert parse_config(base, tmp_path).password_policy == PasswordPolicy()
    policy = {**{k: True for k in ("enabled", "require_digit", "require_symbol")}}
    parsed = parse_config({**base, "password_policy": {**policy, "minimum_length": 12}}, tmp_path)
    assert parsed.password_policy == PasswordPolicy(
        enabled=True, minimum_length=12, require_digit=True, require_symbol=True
    )
    for bad, says in [
        ({"minimum_length": "8"}, "password_policy.minimum_length"),
        ({"minimum_length": 513}, "0-512"),
        ({"require_digit": "yes"}, "password_policy.require_digit"),
        ({"require_emoji": True}, "unknown password_policy keys: require_emoji"),
    ]:
        with pytest.raises(ConfigError, match=says):
            parse_config({**base, "password_policy": bad}, tmp_path)


def test_init_template_documents_the_policy(tmp_path: Path) -> None:
    from homeserver.node.setup import init_node

    init_node("kairan.example.jp", tmp_path)
    text = (tmp_path / "kairan.yaml").read_text()
    assert "password_policy:" in text and "512" in text
    assert load_config(tmp_path).password_policy == PasswordPolicy()
