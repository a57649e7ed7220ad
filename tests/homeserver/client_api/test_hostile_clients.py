"""Hostile clients: what a black-box probe of a node made by ``kairan init`` (defaults) found
over the Client-Server API, one regression test per finding, over HTTP on both databases.

This is the client side of tests/homeserver/federation/test_federation_hostile.py: add the
next finding here, named after the issue's point. Each test shows that the node answers a
Matrix error (never a 5xx), reveals nothing it should not, and keeps its log short.
"""

from __future__ import annotations

from typing import Any

from tests.homeserver.client import Client, Response, User

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
