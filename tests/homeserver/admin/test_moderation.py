"""whois, account locking and suspension (Matrix 1.18) over real HTTP, attacker first."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from homeserver.accounts.checks import ClientInfo
from homeserver.accounts.last_seen import GRANULARITY_MS, LastSeen
from homeserver.accounts.requester import Requester
from homeserver.common.clock import Clock
from tests.homeserver.client import User
from tests.homeserver.conftest import Node
from tests.homeserver.openapi import ValidatingClient

V3 = "/_matrix/client/v3"
LOCK = "/_matrix/client/v1/admin/lock/"
SUSPEND = "/_matrix/client/v1/admin/suspend/"
WHOIS = V3 + "/admin/whois/"


def u(user_id: str) -> str:
    return quote(user_id, safe="@:")


@pytest.fixture
def c(vclient: ValidatingClient) -> ValidatingClient:
    return vclient  # tests/homeserver/conftest.py: every response checked


@pytest.fixture
async def admin(node: Node, c: ValidatingClient) -> User:
    await node.services.admin.add_user("root", "root password", admin=True)
    body = await c.ok("POST", V3 + "/login", {"type": "m.login.password",
                      "identifier": {"type": "m.id.user", "user": "root"},
                      "password": "root password"})  # fmt: skip
    return User(c, body["user_id"], body["access_token"], body["device_id"])


async def test_non_admins_are_refused_before_any_lookup(
    c: ValidatingClient, admin: User, node: Node
) -> None:
    alice = await c.register("alice")
    bob = await c.register("bob")
    for path in (LOCK, SUSPEND):
        for target in (bob.user_id, "@nobody:" + node.server_name, "@x:elsewhere.example"):
            r = await c.request("GET", path + u(target), token=alice.token)
            assert r.status == 403 and r.body["errcode"] == "M_FORBIDDEN", r
            r = await c.request("PUT", path + u(target), {"locked": True, "suspended": True},
                                token=alice.token)  # fmt: skip
            assert r.status == 403 and r.body["errcode"] == "M_FORBIDDEN", r
        r = await c.request("GET", path + u(bob.user_id))
        assert r.status == 401
    r = await c.request("GET", WHOIS + u(bob.user_id), token=alice.token)
    assert r.status == 403 and r.body["errcode"] == "M_FORBIDDEN"
    # Nothing changed.
    assert (await c.ok("GET", LOCK + u(bob.user_id), token=admin.token)) == {"locked": False}


async def test_admin_errors(c: ValidatingClient, admin: User, node: Node) -> None:
    alice = await c.register("alice")
    r = await c.request("GET", LOCK + u("@x:elsewhere.example"), token=admin.token)
    assert r.status == 400 and r.body["errcode"] == "M_INVALID_PARAM"
    r = await c.request("GET", SUSPEND + u("@ghost:" + node.server_name), token=admin.token)
    assert r.status == 404 and r.body["errcode"] == "M_NOT_FOUND"
    r = await c.request("PUT", LOCK + u(admin.user_id), {"locked": True}, token=admin.token)
    assert r.status == 403 and r.body["errcode"] == "M_FORBIDDEN"  # not yourself
    for body in ({}, {"locked": "yes"}, {"suspended": True}):
        r = await c.request("PUT", LOCK + u(alice.user_id), body, token=admin.token)
        assert r.status == 400 and r.body["errcode"] == "M_BAD_JSON", (body, r)
    r = await c.request("GET", WHOIS + u("@x:elsewhere.example"), token=admin.token)
    assert r.status == 400
    # Another admin cannot be locked.
    await node.services.admin.add_user("root2", "pw pw pw", admin=True)
    r = await c.request("PUT", SUSPEND + u("@root2:" + node.server_name), {"suspended": True},
                        token=admin.token)  # fmt: skip
    assert r.status == 403
    caps = (await c.ok("GET", V3 + "/capabilities", token=admin.token))["capabilities"]
    assert caps["m.account_moderation"] == {"lock": True, "suspend": True}
    caps = (await c.ok("GET", V3 + "/capabilities", token=alice.token))["capabilities"]
    assert "m.account_moderation" not in caps


async def test_whois(c: ValidatingClient, admin: User) -> None:
    alice = await c.register("alice")
    mine = await c.ok("GET", WHOIS + u(alice.user_id), token=alice.token)
    assert mine["user_id"] == alice.user_id and list(mine["devices"]) == [alice.device_id]
    connection = mine["devices"][alice.device_id]["sessions"][0]["connections"][0]
    assert connection["ip"] == "127.0.0.1" and connection["last_seen"] > 0
    theirs = await c.ok("GET", WHOIS + u(alice.user_id), token=admin.token)
    assert theirs == mine


async def _whois_connections(c: ValidatingClient, admin: User, user_id: str) -> dict[str, Any]:
    devices = (await c.ok("GET", WHOIS + u(user_id), token=admin.token))["devices"]
    return {d: v["sessions"][0]["connections"][0] for d, v in devices.items()}


async def test_whois_names_each_devices_user_agent(
    c: ValidatingClient, admin: User, node: Node
) -> None:
    """As Synapse: each connection has the user agent the device was last seen with,
    recorded at login and on its requests."""
    await c.register("alice")
    logins = {}
    for agent in ("Element/1.11 (laptop)", "Element X/25.1 (phone)"):
        logins[agent] = await c.ok("POST", V3 + "/login", {"type": "m.login.password",
                                   "identifier": {"type": "m.id.user", "user": "alice"},
                                   "password": "correct horse"},
                                   headers={"User-Agent": agent})  # fmt: skip
    user_id = logins["Element/1.11 (laptop)"]["user_id"]
    seen = await _whois_connections(c, admin, user_id)
    for agent, login in logins.items():
        assert seen[login["device_id"]]["user_agent"] == agent
        assert seen[login["device_id"]]["ip"] == "127.0.0.1"
    # The laptop's client changes: its next request records the new one (and the time).
    laptop = logins["Element/1.11 (laptop)"]
    await c.ok("GET", V3 + "/account/whoami", token=laptop["access_token"],
               headers={"User-Agent": "Element/1.12 (laptop)"})  # fmt: skip
    now = await _whois_connections(c, admin, user_id)
    assert now[laptop["device_id"]]["user_agent"] == "Element/1.12 (laptop)"
    assert now[laptop["device_id"]]["last_seen"] >= seen[laptop["device_id"]]["last_seen"]
    phone = logins["Element X/25.1 (phone)"]
    assert now[phone["device_id"]] == seen[phone["device_id"]]
    # The admin API lists it too.
    listed = await c.ok("GET", f"/_kairan/admin/v1/users/{u(user_id)}/devices", token=admin.token)
    agents = {d["device_id"]: d["last_seen_user_agent"] for d in listed["devices"]}
    assert agents[laptop["device_id"]] == "Element/1.12 (laptop)"


class _Clock(Clock):
    def __init__(self) -> None:
        self.ms = 1_000_000

    def now_ms(self) -> int:
        return self.ms


async def test_last_seen_writes_only_when_something_changed(node: Node) -> None:
    """A device seen again from the same address and client writes nothing until the time
    written is two minutes old; another address or client writes at once."""
    accounts = node.services.accounts
    user_id = await accounts.create_user("alice", "correct horse")
    clock = _Clock()
    seen = LastSeen(node.services.db, clock)
    _, device_id = await accounts.login(user_id, None, None, "127.0.0.1")
    who = Requester(user_id, device_id)
    here = ClientInfo("127.0.0.1", "Element/1")

    async def stored() -> tuple[int | None, str | None, str | None]:
        device = next(d for d in await accounts.devices(user_id) if d.device_id == device_id)
        return device.last_seen_ts, device.last_seen_ip, device.last_seen_user_agent

    assert await seen.seen(who, here) is True
    assert await stored() == (1_000_000, "127.0.0.1", "Element/1")
    clock.ms += GRANULARITY_MS - 1
    assert await seen.seen(who, here) is False
    assert await stored() == (1_000_000, "127.0.0.1", "Element/1")
    clock.ms += 1
    assert await seen.seen(who, here) is True
    assert await stored() == (1_000_000 + GRANULARITY_MS, "127.0.0.1", "Element/1")
    clock.ms += 1
    assert await seen.seen(who, ClientInfo("127.0.0.1", "Element/2")) is True
    assert await seen.seen(who, ClientInfo("::1", "Element/2")) is True
    assert await stored() == (1_000_000 + GRANULARITY_MS + 1, "::1", "Element/2")
    assert await seen.seen(who, ClientInfo("::1", "Element/2")) is False
    # A login writes the row itself: what it wrote is not written again.
    seen.written(user_id, device_id, ClientInfo("::1", "x" * 600), clock.ms)
    assert await seen.seen(who, ClientInfo("::1", "x" * 600)) is False  # kept to 512 chars


async def test_lock(c: ValidatingClient, admin: User) -> None:
    alice = await c.register("alice")
    second = await c.ok("POST", V3 + "/login", {"type": "m.login.password",
                        "identifier": {"type": "m.id.user", "user": "alice"},
                        "password": "correct horse"})  # fmt: skip
    put = await c.ok("PUT", LOCK + u(alice.user_id), {"locked": True}, token=admin.token)
    assert put == {"locked": True}
    assert await c.ok("GET", LOCK + u(alice.user_id), token=admin.token) == {"locked": True}
    for method, path, body in (("GET", V3 + "/account/whoami", None),
                               ("GET", V3 + "/sync", None),
                               ("POST", V3 + "/createRoom", {})):  # fmt: skip
        r = await c.request(method, path, body, token=alice.token)
        assert r.status == 401 and r.body["errcode"] == "M_USER_LOCKED", r
        assert r.body["soft_logout"] is True
    r = await c.request("POST", V3 + "/login", {"type": "m.login.password",
                        "identifier": {"type": "m.id.user", "user": "alice"},
                        "password": "correct horse"})  # fmt: skip
    assert r.status == 401 and r.body["errcode"] == "M_USER_LOCKED"
    # Logging out still works.
    await c.ok("POST", V3 + "/logout", {}, token=second["access_token"])
    await c.ok("PUT", LOCK + u(alice.user_id), {"locked": False}, token=admin.token)
    await c.ok("GET", V3 + "/account/whoami", token=alice.token)  # the session survived
    r = await c.request("GET", V3 + "/account/whoami", token=second["access_token"])
    assert r.status == 401 and r.body["errcode"] == "M_UNKNOWN_TOKEN"


async def test_suspend(c: ValidatingClient, admin: User) -> None:
    alice = await c.register("alice")
    bob = await c.register("bob")
    room = (await c.ok("POST", V3 + "/createRoom", {}, token=alice.token))["room_id"]
    other = (await c.ok("POST", V3 + "/createRoom", {}, token=bob.token))["room_id"]
    await c.ok("POST", f"{V3}/rooms/{room}/invite", {"user_id": bob.user_id}, token=alice.token)
    sent = await c.ok("PUT", f"{V3}/rooms/{room}/send/m.room.message/t1",
                      {"msgtype": "m.text", "body": "hi"}, token=alice.token)  # fmt: skip
    await c.ok("POST", f"{V3}/rooms/{room}/join", {}, token=bob.token)
    bobs = await c.ok("PUT", f"{V3}/rooms/{room}/send/m.room.message/b1",
                      {"msgtype": "m.text", "body": "bob's"}, token=bob.token)  # fmt: skip
    third = (await c.ok("POST", V3 + "/createRoom", {}, token=alice.token))["room_id"]
    await c.ok("PUT", SUSPEND + u(alice.user_id), {"suspended": True}, token=admin.token)
    refused = [
        ("POST", V3 + "/createRoom", {}),
        ("POST", f"{V3}/join/{other}", {}),
        ("POST", f"{V3}/rooms/{other}/join", {}),
        ("POST", f"{V3}/rooms/{room}/invite", {"user_id": "@carol:x"}),
        ("PUT", f"{V3}/rooms/{room}/send/m.room.message/t2", {"msgtype": "m.text", "body": "x"}),
        ("PUT", f"{V3}/rooms/{room}/state/m.room.topic", {"topic": "x"}),
        ("PUT", f"{V3}/profile/{u(alice.user_id)}/displayname", {"displayname": "x"}),
        ("POST", f"{V3}/rooms/{room}/kick", {"user_id": bob.user_id}),
        # Redacting others' events, though the room's power levels would allow it.
        ("PUT", f"{V3}/rooms/{room}/redact/{bobs['event_id']}/r0", {}),
        ("PUT", f"{V3}/rooms/{room}/send/m.room.redaction/r0", {"redacts": bobs["event_id"]}),
        # Memberships through the state API: a kick, a join again (a profile change).
        ("PUT", f"{V3}/rooms/{room}/state/m.room.member/{u(bob.user_id)}", {"membership": "leave"}),
        (
            "PUT",
            f"{V3}/rooms/{room}/state/m.room.member/{u(alice.user_id)}",
            {"membership": "join", "displayname": "x"},
        ),
    ]
    for method, path, body in refused:
        r = await c.request(method, path, body, token=alice.token)
        assert r.status == 403 and r.body["errcode"] == "M_USER_SUSPENDED", (path, r)
    # Nothing of that happened: bob is in the room, his message unredacted.
    members = await c.ok("GET", f"{V3}/rooms/{room}/joined_members", token=bob.token)
    assert bob.user_id in members["joined"]
    bobs_now = await c.ok("GET", f"{V3}/rooms/{room}/event/{bobs['event_id']}", token=bob.token)
    assert bobs_now["content"] == {"msgtype": "m.text", "body": "bob's"}
    # Reading, redacting its own messages and leaving stay allowed.
    await c.ok("GET", V3 + "/sync", token=alice.token, params={"timeout": "0"})
    await c.ok("GET", f"{V3}/rooms/{room}/messages", token=alice.token)
    await c.ok("PUT", f"{V3}/rooms/{room}/redact/{sent['event_id']}/r1", {}, token=alice.token)
    await c.ok("PUT", f"{V3}/rooms/{room}/send/m.room.redaction/r2",
               {"redacts": sent["event_id"]}, token=alice.token)  # fmt: skip
    await c.ok("POST", f"{V3}/rooms/{room}/leave", {}, token=alice.token)
    # Leaving through the state API too (as Synapse).
    await c.ok("PUT", f"{V3}/rooms/{third}/state/m.room.member/{u(alice.user_id)}",
               {"membership": "leave"}, token=alice.token)  # fmt: skip
    assert third not in (await c.ok("GET", V3 + "/joined_rooms", token=alice.token))["joined_rooms"]
    assert await c.ok("GET", SUSPEND + u(alice.user_id), token=admin.token) == {"suspended": True}
    await c.ok("PUT", SUSPEND + u(alice.user_id), {"suspended": False}, token=admin.token)
    await c.ok("POST", V3 + "/createRoom", {}, token=alice.token)
