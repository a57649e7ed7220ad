"""Hostile clients: what a black-box probe of a node made by ``kairan init`` (defaults) found
over the Client-Server API, one regression test per finding, over HTTP on both databases.

This is the client side of tests/homeserver/federation/test_federation_hostile.py: add the
next finding here, named after the issue's point (point 1, what a departed member sees, has
its own module: test_hostile_visibility.py). Each test shows that the node answers a
Matrix error (never a 5xx), reveals nothing it should not, and keeps its log short.
"""

from __future__ import annotations

import contextlib
import json
import logging
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import pytest
from argon2 import PasswordHasher

from homeserver.accounts.passwords import Passwords
from homeserver.accounts.throttle import Buckets
from homeserver.common import protocol_log
from homeserver.common.clock import Clock
from homeserver.common.errors import MatrixError
from homeserver.config import LoginLimits, Rate
from tests.homeserver.client import Client, Response, User
from tests.homeserver.conftest import Node, running_node

V3 = "/_matrix/client/v3"
LOGIN = V3 + "/login"


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
    # The hash kept for this check lets nothing else in: the old tokens stay dead.
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


# ------------------------------------------------------------------ point 6: room aliases

#: Local parts no alias may have: the probe's 300 characters (over the spec's 255 bytes for
#: the whole alias), BEL, ESC, newline, tab, spaces (ASCII and ideographic), C1 controls.
BAD_LOCALPARTS = [
    pytest.param("a" * 300, id="300-chars"),
    pytest.param("bell\x07", id="BEL"),
    pytest.param("esc\x1b[31m", id="ESC"),
    pytest.param("new\nline", id="newline"),
    pytest.param("tab\there", id="tab"),
    pytest.param("two words", id="space"),
    pytest.param("回覧\u3000板", id="ideographic-space"),
    pytest.param("c1\x85", id="C1-control"),
]


def longest_localpart(server_name: str) -> str:
    """The longest local part whose alias ``#...:server`` is exactly 255 bytes."""
    return "a" * (255 - len(f"#:{server_name}"))


@pytest.mark.parametrize(
    "localpart", [*BAD_LOCALPARTS, pytest.param("a" * 60_000, id="60000-chars")]
)
async def test_create_room_refuses_an_invalid_alias(
    node: Node, client: Client, localpart: str
) -> None:
    alice = await client.register("alice")
    refused = await alice.request("POST", V3 + "/createRoom", {"room_alias_name": localpart})
    assert error(refused) == (400, "M_INVALID_PARAM")
    assert await node.services.directory.room_for_alias(f"#{localpart}:{node.server_name}") is None


@pytest.mark.parametrize("localpart", BAD_LOCALPARTS)
async def test_put_alias_refuses_an_invalid_alias(
    node: Node, client: Client, localpart: str
) -> None:
    alice = await client.register("alice")
    room_id = await alice.create_room()
    alias = f"#{localpart}:{node.server_name}"
    refused = await alice.request(
        "PUT", f"{V3}/directory/room/{quote(alias, safe='')}", {"room_id": room_id}
    )
    assert error(refused) == (400, "M_INVALID_PARAM")
    assert await node.services.directory.room_for_alias(alias) is None


async def test_aliases_up_to_255_bytes_and_in_japanese_are_fine(node: Node, client: Client) -> None:
    alice = await client.register("alice")
    longest = longest_localpart(node.server_name)
    made = await alice.ok("POST", V3 + "/createRoom", {"room_alias_name": longest})
    assert made["room_alias"] == f"#{longest}:{node.server_name}"
    assert len(made["room_alias"].encode()) == 255
    too_long = await alice.request("POST", V3 + "/createRoom", {"room_alias_name": longest + "b"})
    assert error(too_long) == (400, "M_INVALID_PARAM")
    alias = f"#回覧板:{node.server_name}"
    await alice.ok(
        "PUT", f"{V3}/directory/room/{quote(alias, safe='')}", {"room_id": made["room_id"]}
    )
    found = await client.ok("GET", f"{V3}/directory/room/{quote(alias, safe='')}")
    assert found["room_id"] == made["room_id"]


@pytest.mark.parametrize(
    "content",
    [
        pytest.param({"alias": "#two words:elsewhere.example"}, id="alias-space"),
        pytest.param({"alt_aliases": ["#bell\x07:elsewhere.example"]}, id="alt-BEL"),
        pytest.param({"alt_aliases": ["#" + "a" * 300 + ":elsewhere.example"]}, id="alt-long"),
        pytest.param({"alt_aliases": ["no-hash:elsewhere.example"]}, id="alt-no-sigil"),
        pytest.param({"alias": "#ok:not a server"}, id="bad-server-name"),
    ],
)
async def test_canonical_alias_event_refuses_an_invalid_alias(
    client: Client, content: dict[str, Any]
) -> None:
    alice = await client.register("alice")
    room_id = await alice.create_room()
    path = f"{V3}/rooms/{room_id}/state/m.room.canonical_alias/"
    refused = await alice.request("PUT", path, content)
    assert error(refused) == (400, "M_BAD_ALIAS")
    state = await alice.request("GET", path)
    assert error(state) == (404, "M_NOT_FOUND")
    # A valid remote alias is still fine (it cannot be checked against the directory).
    await alice.ok("PUT", path, {"alt_aliases": ["#回覧板:elsewhere.example"]})


# ------------------------------------------------------------------ point 8: log flooding


def lines_from(caplog: pytest.LogCaptureFixture, level: int) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= level]


async def test_a_long_path_is_a_matrix_error_without_a_log_line(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    """The probe's 9,000-character path wrote an ERROR and a traceback per request."""
    caplog.set_level(logging.INFO)
    for _ in range(3):
        response = await client.request("GET", "/_matrix/client/v3/" + "a" * 9_000)
        assert error(response) == (404, "M_UNRECOGNIZED")
    assert lines_from(caplog, logging.WARNING) == []


async def test_malformed_requests_log_one_line_a_minute(
    client: Client, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A request line over the node's limit is answered by the HTTP server itself (400):
    one WARNING line without a traceback per minute, with the count of those not logged."""
    caplog.set_level(logging.INFO)
    now = [1000.0]
    monkeypatch.setattr(protocol_log.FILTER, "clock", lambda: now[0])
    monkeypatch.setattr(protocol_log.FILTER, "_last", None)
    monkeypatch.setattr(protocol_log.FILTER, "suppressed", 0)
    path = "/_matrix/client/v3/" + "a" * (protocol_log.MAX_REQUEST_LINE + 1000)
    for _ in range(5):
        assert (await client.request("GET", path)).status == 400
    logged = lines_from(caplog, logging.WARNING)
    assert [r.levelno for r in logged] == [logging.WARNING], logged
    assert logged[0].exc_info is None and "\n" not in logged[0].getMessage()
    assert logged[0].getMessage().startswith("malformed HTTP request from 127.0.0.1: 400")
    assert len(logged[0].getMessage()) < 300
    assert protocol_log.FILTER.suppressed == 4

    now[0] += protocol_log.INTERVAL
    caplog.clear()
    assert (await client.request("GET", path)).status == 400
    [again] = lines_from(caplog, logging.WARNING)
    assert "(4 more in the last 60s not logged)" in again.getMessage()


# ------------------------------------------------------------------ point 4: forgotten rooms


def history_paths(room_id: str, event_id: str) -> list[str]:
    room = f"{V3}/rooms/{room_id}"
    return [
        f"{room}/messages?dir=b",
        f"{room}/context/{event_id}",
        f"{room}/event/{event_id}",
        f"{room}/state",
        f"{room}/state/m.room.create",
    ]


async def test_a_forgotten_room_history_is_no_longer_readable(client: Client) -> None:
    alice = await client.register("alice")
    bob = await client.register("bob")
    room_id = await alice.create_room(preset="public_chat")
    await bob.join(room_id)
    event_id = await alice.send(room_id, "町内会の議事録")
    await bob.ok("POST", f"{V3}/rooms/{room_id}/leave", {})
    for path in history_paths(room_id, event_id):  # a departed member still reads it
        assert (await bob.request("GET", path)).status == 200, path

    await bob.ok("POST", f"{V3}/rooms/{room_id}/forget", {})
    for path in history_paths(room_id, event_id):
        assert error(await bob.request("GET", path)) == (403, "M_FORBIDDEN"), path
    for path in history_paths(room_id, event_id):  # the members are not affected
        assert (await alice.request("GET", path)).status == 200, path


async def test_a_forgotten_world_readable_room_is_read_as_by_anyone(client: Client) -> None:
    alice = await client.register("alice")
    bob = await client.register("bob")
    room_id = await alice.create_room(
        preset="public_chat",
        initial_state=[
            {
                "type": "m.room.history_visibility",
                "state_key": "",
                "content": {"history_visibility": "world_readable"},
            }
        ],
    )
    await bob.join(room_id)
    await bob.ok("POST", f"{V3}/rooms/{room_id}/leave", {})
    await bob.ok("POST", f"{V3}/rooms/{room_id}/forget", {})
    assert (await bob.request("GET", f"{V3}/rooms/{room_id}/messages?dir=b")).status == 200


# ------------------------------------------------------------------ long path segments


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PUT", "/rooms/{room}/send/m.room.message/{long}", {"msgtype": "m.text", "body": "x"}),
        ("PUT", "/rooms/{room}/send/{long}/t1", {"x": 1}),
        ("PUT", "/rooms/{room}/state/{long}/", {"x": 1}),
        ("PUT", "/rooms/{room}/state/m.room.topic/{long}", {"topic": "x"}),
        ("PUT", "/user/{user}/account_data/{long}", {"x": 1}),
        ("PUT", "/user/{user}/rooms/{room}/account_data/{long}", {"x": 1}),
        ("PUT", "/sendToDevice/m.test/{long}", {"messages": {}}),
        ("GET", "/user/{user}/filter/{long}", None),
        ("GET", "/rooms/{long}/messages", None),
        ("GET", "/rooms/{room}/event/{long}", None),
        ("POST", "/join/{long}", {}),
        ("GET", "/profile/{long}", None),
        ("PUT", "/devices/{long}", {"display_name": "x"}),
    ],
)
async def test_path_segments_of_kilobytes_get_a_matrix_answer(
    client: Client, method: str, path: str, body: Any
) -> None:
    """Paths up to 16 KiB reach the handlers (point 8): a segment longer than what a column
    holds must be a Matrix error, never a 500 from the database (PostgreSQL refuses index
    entries over about 2,700 bytes)."""
    alice = await client.register("alice")
    room = await alice.create_room()
    long = "x" * 6000
    target = V3 + path.format(room=quote(room), user=quote(alice.user_id), long=long)
    response = await alice.request(method, target, body)
    assert response.status < 500, response
    if response.status >= 400:
        assert isinstance(response.body, dict) and response.body.get("errcode"), response


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        (
            "POST",
            "/login",
            {
                "type": "m.login.password",
                "password": "correct horse",
                "identifier": {"type": "m.id.user", "user": "alice"},
                "device_id": "{long}",
            },
        ),
        (
            "POST",
            "/login",
            {
                "type": "m.login.password",
                "password": "correct horse",
                "identifier": {"type": "m.id.user", "user": "alice"},
                "initial_device_display_name": "{long}",
            },
        ),
        (
            "POST",
            "/register",
            {"username": "{long}", "password": "pw long enough", "auth": {"type": "m.login.dummy"}},
        ),
        ("PUT", "/profile/{user}/displayname", {"displayname": "{long}"}),
        ("PUT", "/profile/{user}/avatar_url", {"avatar_url": "mxc://a/{long}"}),
        ("POST", "/createRoom", {"room_version": "{long}"}),
        ("POST", "/createRoom", {"name": "{long}"}),
        ("POST", "/user/{user}/filter", {"room": {"rooms": ["{long}"]}}),
        (
            "POST",
            "/pushers/set",
            {
                "kind": "http",
                "app_id": "{long}",
                "pushkey": "k",
                "app_display_name": "a",
                "device_display_name": "d",
                "lang": "ja",
                "data": {"url": "https://push.example/_matrix/push/v1/notify"},
            },
        ),
        ("POST", "/keys/upload", {"one_time_keys": {"signed_curve25519:{long}": {"key": "x"}}}),
    ],
)
async def test_body_fields_of_kilobytes_get_a_matrix_answer(
    client: Client, method: str, path: str, body: Any
) -> None:
    """Strings longer than a column holds, in request bodies: a Matrix error or a stored
    value, never a 500 from the database."""
    alice = await client.register("alice")
    long = "x" * 6000
    text = json.dumps(body).replace("{long}", long).replace("{user}", alice.user_id)
    target = V3 + path.format(user=quote(alice.user_id), long=long)
    response = await alice.request(method, target, json.loads(text))
    assert response.status < 500, response
    if response.status >= 400:
        assert isinstance(response.body, dict) and response.body.get("errcode"), response


# ------------------------------------------------------------------ point 2: login throttling

HIGH = Rate(10_000, 10_000)
DEFAULT = LoginLimits().address  # Synapse's 0.17/s with bursts of 3


def limited(
    tmp_path: Path, db_url: str, limits: LoginLimits
) -> contextlib.AbstractAsyncContextManager[Node]:
    return running_node(tmp_path / "limited", db_url, login_limits=limits)


async def test_wrong_passwords_are_limited_per_account_before_any_hash(
    tmp_path: Path, db_url: str
) -> None:
    """The probe tried 120 passwords at 8/s, none limited: now the fourth wrong one is 429,
    answered before any argon2 hash, for the right password too, and only for that account."""
    async with limited(tmp_path, db_url, LoginLimits(HIGH, HIGH, DEFAULT)) as node:
        hasher = CountingHasher()
        node.services.accounts.passwords = Passwords(hasher=hasher)
        async with node.client() as client:
            await client.register("alice", "alice pw")
            await client.register("bob", "bob pw")
            answers = [await login(client, "alice", f"guess {i}") for i in range(6)]
            assert [r.status for r in answers] == [403, 403, 403, 429, 429, 429]
            for answer in answers[3:]:
                assert error(answer) == (429, "M_LIMIT_EXCEEDED")
                assert answer.body["retry_after_ms"] > 0
            assert len(hasher.verified) == 3  # none once limited
            assert error(await login(client, "alice", "alice pw")) == (429, "M_LIMIT_EXCEEDED")
            assert (await login(client, "bob", "bob pw")).status == 200


async def test_logins_are_limited_per_address_and_successful_ones_per_account(
    tmp_path: Path, db_url: str
) -> None:
    async with (
        limited(tmp_path, db_url, LoginLimits(DEFAULT, HIGH, HIGH)) as node,
        node.client() as client,
    ):
        for name in ("a1", "a2", "a3", "a4"):
            await client.register(name, "pw of " + name)
        # A burst over several accounts from one address: the fourth is 429.
        answers = [await login(client, name, "nope") for name in ("a1", "a2", "a3", "a4")]
        assert [r.status for r in answers] == [403, 403, 403, 429]
    async with (
        limited(tmp_path / "b", db_url, LoginLimits(HIGH, DEFAULT, HIGH)) as node,
        node.client() as client,
    ):
        await client.register("carol", "carol pw")
        answers = [await login(client, "carol", "carol pw") for _ in range(4)]
        assert [r.status for r in answers] == [200, 200, 200, 429]


async def test_the_password_stage_of_interactive_auth_is_limited(
    tmp_path: Path, db_url: str
) -> None:
    async with (
        limited(tmp_path, db_url, LoginLimits(HIGH, HIGH, DEFAULT)) as node,
        node.client() as client,
    ):
        alice = await client.register("alice", "alice pw")
        statuses = []
        for i in range(5):
            auth = {"type": "m.login.password", "user": alice.user_id, "password": f"g{i}"}
            answer = await alice.request(
                "POST", V3 + "/account/password", {"new_password": "new pw", "auth": auth}
            )
            statuses.append(answer.status)
        assert statuses == [401, 401, 401, 429, 429]


def test_buckets_refill_at_their_rate() -> None:
    class FakeClock(Clock):
        now = 0.0

        def monotonic(self) -> float:
            return self.now

    clock = FakeClock()
    buckets = Buckets(Rate(0.5, 2), clock)
    buckets.check("k")
    buckets.check("k")
    with pytest.raises(MatrixError) as limited_error:
        buckets.check("k")
    assert limited_error.value.extra["retry_after_ms"] == 2001
    clock.now = 2.0
    buckets.check("k")  # one token back after 2 s
    buckets.spend("other")
    buckets.check("other", spend=False)  # one of two left: allowed, not spent
    buckets.check("other")
    with pytest.raises(MatrixError):
        buckets.check("other", spend=False)


# ------------------------------------------------------------------ point 5: device_lists.left


async def test_device_lists_left_names_only_users_once_shared_with(client: Client) -> None:
    """After Alice leaves a room, ``device_lists.left`` names Bob, who was in it, and not
    Carol, who joined after Alice had left (the probe saw such a user listed)."""
    alice = await client.register("alice")
    bob = await client.register("bob")
    carol = await client.register("carol")
    room = await alice.create_room(preset="public_chat")
    await bob.join(room)
    since = (await alice.sync())["next_batch"]
    await alice.ok("POST", f"{V3}/rooms/{quote(room)}/leave", {})
    await carol.join(room)
    later = await alice.sync(since=since)
    left = later.get("device_lists", {}).get("left", [])
    assert bob.user_id in left
    assert carol.user_id not in left


# ------------------------------------------------------------------ issue 10 point 9: authoriser


async def test_client_cannot_name_who_authorised_its_join(client: Client) -> None:
    """``join_authorised_via_users_server`` is this server's word that one of its users
    who may invite let the joiner in; a client setting it on its own member event (here
    naming a local user without the power to invite) has it stripped, as Synapse does."""
    alice, bob, carol = [await client.register(n) for n in ("alice", "bob", "carol")]
    room = await alice.create_room(
        preset="public_chat", power_level_content_override={"invite": 50}
    )
    await bob.join(room)
    await carol.join(room)
    path = f"{V3}/rooms/{quote(room)}/state/m.room.member/{quote(bob.user_id)}"
    content = {"membership": "join", "displayname": "ボブ"}
    await bob.ok("PUT", path, {**content, "join_authorised_via_users_server": carol.user_id})
    assert await alice.ok("GET", path) == content


async def test_a_json_body_that_arrives_in_pieces_is_read_whole(node: Node, client: Client) -> None:
    """A body under the 1 MiB limit but larger than what one read returns was cut at the
    first read and refused as 'Content not JSON' (found by the directory's tests)."""
    alice = await client.register("alice")
    path = f"{V3}/user/{quote(alice.user_id)}/account_data/org.example.big"
    content = {"blob": "x" * 900_000}
    await alice.ok("PUT", path, content)
    assert await alice.ok("GET", path) == content
    over = await alice.request("PUT", path, {"blob": "x" * 1_100_000})
    assert (over.status, over.body["errcode"]) == (413, "M_TOO_LARGE")
