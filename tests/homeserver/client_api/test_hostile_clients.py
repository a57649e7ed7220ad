"""Hostile clients: what a black-box probe of a node made by ``kairan init`` (defaults) found
over the Client-Server API, one regression test per finding, over HTTP on both databases.

This is the client side of tests/homeserver/federation/test_federation_hostile.py: add the
next finding here, named after the issue's point. Each test shows that the node answers a
Matrix error (never a 5xx), reveals nothing it should not, and keeps its log short.
"""

from __future__ import annotations

from typing import Any, Literal

from argon2 import PasswordHasher

from homeserver.accounts.passwords import Passwords
from tests.homeserver.client import Client, Response, User
from tests.homeserver.conftest import Node

LOGIN = "/_matrix/client/v3/login"


async def login(client: Client, user: str, password: str) -> Response:
    body = {
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": user},
        "password": password,
    }
    return await client.request("POST", LOGIN, body)


def error(response: Response) -> tuple[int, Any]:
    assert isinstance(response.body, dict), response
    return response.status, response.body.get("errcode")


async def deactivate(user: User, password: str) -> None:
    auth = {"type": "m.login.password", "user": user.user_id, "password": password}
    await user.ok("POST", "/_matrix/client/v3/account/deactivate", {"auth": auth})


# ------------------------------------------------------------------ point 10: deactivated login


async def test_login_of_a_deactivated_account_says_so_only_to_its_password(
    client: Client,
) -> None:
    alice = await client.register("alice", "alice pw")
    await deactivate(alice, "alice pw")

    # The right password: the spec's 403 M_USER_DEACTIVATED, and no token.
    right = await login(client, "alice", "alice pw")
    assert error(right) == (403, "M_USER_DEACTIVATED")
    assert "access_token" not in right.body
    # A wrong password learns nothing: the answer of any failed login.
    wrong = await login(client, "alice", "guess")
    unknown = await login(client, "nobody", "guess")
    assert error(wrong) == error(unknown) == (403, "M_FORBIDDEN")
    assert wrong.body == unknown.body
    # Nor does the password let anything else in (user-interactive auth, old tokens).
    whoami = await alice.request("GET", "/_matrix/client/v3/account/whoami")
    assert error(whoami) == (401, "M_UNKNOWN_TOKEN")


# ------------------------------------------------------------------ point 3: login timing


class CountingHasher(PasswordHasher):
    """The tests' fast argon2 parameters, counting the hashes each verification checks."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)
        self.verified: list[str] = []

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        self.verified.append(hash if isinstance(hash, str) else hash.decode())
        return super().verify(hash, password)


async def test_login_of_an_unknown_user_costs_an_argon2_check(node: Node, client: Client) -> None:
    """Timing must not tell whether an account exists (the probe measured about 100 ms for
    an existing user, 2 ms for an unknown one): every failed login verifies an argon2 hash,
    a dummy one when there is none to check against."""
    hasher = CountingHasher()
    node.services.accounts.passwords = Passwords(hasher=hasher)
    await client.register("bob", "bob pw")
    no_password = await node.services.accounts.create_user("bridge", None)
    attempts = [("bob", "guess"), ("nobody", "guess"), (no_password, "guess"), ("nobody", "x")]
    for user, password in attempts:
        before = len(hasher.verified)
        assert error(await login(client, user, password)) == (403, "M_FORBIDDEN")
        checked = hasher.verified[before:]
        assert len(checked) == 1, (user, checked)
        assert checked[0].startswith("$argon2id$"), (user, checked)
    assert (await login(client, "bob", "bob pw")).status == 200
