"""The admin API over real HTTP: who may use it, users, devices, rooms, registration tokens."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from tests.homeserver.client import Client, User
from tests.homeserver.conftest import Node

A = "/_kairan/admin/v1"


async def login(client: Client, localpart: str, password: str) -> User:
    body = await client.ok(
        "POST",
        "/_matrix/client/v3/login",
        {
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": localpart},
            "password": password,
        },
    )
    return User(client, body["user_id"], body["access_token"], body["device_id"])


@pytest.fixture
async def admin(node: Node, client: Client) -> User:
    await node.services.admin.add_user("root", "root password", admin=True)
    return await login(client, "root", "root password")


def u(user_id: str) -> str:
    return quote(user_id, safe="@:")


async def test_only_admins(node: Node, client: Client, admin: User) -> None:
    alice = await client.register("alice")
    paths = [
        ("GET", "/server_version"),
        ("GET", "/users"),
        ("GET", f"/users/{u(alice.user_id)}"),
        ("PUT", f"/users/{u(alice.user_id)}"),
        ("POST", f"/users/{u(alice.user_id)}/deactivate"),
        ("GET", f"/users/{u(alice.user_id)}/devices"),
        ("DELETE", f"/users/{u(alice.user_id)}/devices/X"),
        ("GET", "/rooms"),
        ("GET", "/rooms/!x"),
        ("GET", "/rooms/!x/members"),
        ("GET", "/rooms/!x/state"),
        ("DELETE", "/rooms/!x"),
        ("GET", "/registration_tokens"),
        ("POST", "/registration_tokens/new"),
        ("GET", "/registration_tokens/abc"),
        ("PUT", "/registration_tokens/abc"),
        ("DELETE", "/registration_tokens/abc"),
    ]
    for method, path in paths:
        anonymous = await client.request(method, A + path, {})
        assert anonymous.status == 401, (path, anonymous)
        assert anonymous.body["errcode"] == "M_MISSING_TOKEN"
        forbidden = await alice.request(method, A + path, {})
        assert forbidden.status == 403, (path, forbidden)
        assert forbidden.body["errcode"] == "M_FORBIDDEN"
    # Alice is still active: the forbidden deactivation did nothing.
    assert (await alice.ok("GET", "/_matrix/client/v3/account/whoami"))["user_id"] == alice.user_id

    version = await admin.ok("GET", A + "/server_version")
    assert version["server_version"].startswith("Kairan ")


async def test_config_admins_may_use_the_api(node: Node, client: Client) -> None:
    boss = await client.register("boss")
    assert (await boss.request("GET", A + "/users")).status == 403
    node.services.accounts._admins.add(boss.user_id)
    node.services.accounts._token_cache.clear()
    assert (await boss.ok("GET", A + "/users"))["total"] == 1


async def test_list_users_pages(node: Node, client: Client, admin: User) -> None:
    for i in range(5):
        await node.services.admin.add_user(f"user{i}", "pw")
    first = await admin.ok("GET", A + "/users", params={"limit": "4"})
    assert first["total"] == 6
    assert len(first["users"]) == 4
    second = await admin.ok("GET", A + "/users", params={"limit": "4", "from": first["next_token"]})
    assert "next_token" not in second
    ids = [x["user_id"] for x in first["users"] + second["users"]]
    assert ids == sorted(ids) and len(set(ids)) == 6
    root = next(x for x in first["users"] if x["user_id"] == admin.user_id)
    assert root["admin"] is True and root["deactivated"] is False
    await node.services.admin.modify_user(f"@user3:{node.server_name}", displayname="山田")
    await node.services.admin.deactivate_user(f"@user4:{node.server_name}")
    named = await admin.ok("GET", A + "/users", params={"name": "山田"})
    assert [x["user_id"] for x in named["users"]] == [f"@user3:{node.server_name}"]
    by_id = await admin.ok("GET", A + "/users", params={"name": "USER", "limit": "2"})
    assert by_id["total"] == 5 and len(by_id["users"]) == 2 and by_id["next_token"] == "2"
    active = await admin.ok("GET", A + "/users", params={"deactivated": "false"})
    assert active["total"] == 5
    assert f"@user4:{node.server_name}" not in {x["user_id"] for x in active["users"]}
    bad = await admin.request("GET", A + "/users", params={"deactivated": "no"})
    assert (bad.status, bad.body["errcode"]) == (400, "M_INVALID_PARAM")
    bad = await admin.request("GET", A + "/users", params={"limit": "many"})
    assert (bad.status, bad.body["errcode"]) == (400, "M_INVALID_PARAM")


async def test_get_user(node: Node, client: Client, admin: User) -> None:
    alice = await client.register("alice")
    found = await admin.ok("GET", f"{A}/users/{u(alice.user_id)}")
    assert found["user_id"] == alice.user_id
    assert found["displayname"] == "alice"
    assert found["admin"] is False and found["has_password"] is True
    missing = await admin.request("GET", f"{A}/users/{u('@nobody:' + node.server_name)}")
    assert (missing.status, missing.body["errcode"]) == (404, "M_NOT_FOUND")
    remote = await admin.request("GET", f"{A}/users/{u('@bob:elsewhere.example')}")
    assert (remote.status, remote.body["errcode"]) == (400, "M_INVALID_PARAM")


async def test_create_and_modify_user(node: Node, client: Client, admin: User) -> None:
    user_id = f"@tanaka:{node.server_name}"
    created = await admin.request(
        "PUT",
        f"{A}/users/{u(user_id)}",
        {"password": "first pw", "displayname": "田中", "admin": False},
    )
    assert created.status == 201
    assert created.body["displayname"] == "田中"
    tanaka = await login(client, "tanaka", "first pw")

    # Make them an admin: the API opens to them at once.
    changed = await admin.ok("PUT", f"{A}/users/{u(user_id)}", {"admin": True})
    assert changed["admin"] is True
    assert (await tanaka.ok("GET", A + "/users"))["total"] == 2

    # A new password logs every device out; the new one works, the old one not.
    await admin.ok("PUT", f"{A}/users/{u(user_id)}", {"password": "second pw"})
    assert (await tanaka.request("GET", "/_matrix/client/v3/account/whoami")).status == 401
    await login(client, "tanaka", "second pw")
    old = await client.request(
        "POST",
        "/_matrix/client/v3/login",
        {"type": "m.login.password", "user": "tanaka", "password": "first pw"},
    )
    assert old.status == 403

    # Display name changes go through the profile.
    await admin.ok("PUT", f"{A}/users/{u(user_id)}", {"displayname": "田中 一郎"})
    profile = await client.ok("GET", f"/_matrix/client/v3/profile/{u(user_id)}")
    assert profile["displayname"] == "田中 一郎"

    # Deactivated through PUT, then reactivated with a new password.
    gone = await admin.ok("PUT", f"{A}/users/{u(user_id)}", {"deactivated": True})
    assert gone["deactivated"] is True and gone["has_password"] is False
    refused = await admin.request("PUT", f"{A}/users/{u(user_id)}", {"deactivated": False})
    assert (refused.status, refused.body["errcode"]) == (400, "M_MISSING_PARAM")
    still_gone = await admin.request("PUT", f"{A}/users/{u(user_id)}", {"password": "sneaky"})
    assert (still_gone.status, still_gone.body["errcode"]) == (400, "M_INVALID_PARAM")
    back = await admin.ok(
        "PUT", f"{A}/users/{u(user_id)}", {"deactivated": False, "password": "third pw"}
    )
    assert back["deactivated"] is False
    await login(client, "tanaka", "third pw")


async def test_put_user_bad_input(node: Node, client: Client, admin: User) -> None:
    path = f"{A}/users/{u('@sato:' + node.server_name)}"
    cases: list[tuple[Any, str]] = [
        ({"admin": "yes"}, "M_BAD_JSON"),
        ({"password": 12345}, "M_BAD_JSON"),
        ({"displayname": ["x"]}, "M_BAD_JSON"),
        ({"logout_devices": "no"}, "M_BAD_JSON"),
        ([1, 2], "M_BAD_JSON"),
        ({"deactivated": True}, "M_INVALID_PARAM"),
    ]
    for body, errcode in cases:
        response = await admin.request("PUT", path, body)
        assert (response.status, response.body["errcode"]) == (400, errcode), body
    not_json = await admin.request("PUT", path, data=b"{nope")
    assert (not_json.status, not_json.body["errcode"]) == (400, "M_NOT_JSON")
    bad_name = await admin.request("PUT", f"{A}/users/{u('@BAD NAME:' + node.server_name)}", {})
    assert (bad_name.status, bad_name.body["errcode"]) == (400, "M_INVALID_USERNAME")
    remote = await admin.request("PUT", f"{A}/users/{u('@x:elsewhere.example')}", {})
    assert (remote.status, remote.body["errcode"]) == (400, "M_INVALID_PARAM")
    # Nothing was created by the failed requests.
    assert (await admin.ok("GET", A + "/users"))["total"] == 1


async def test_deactivate_user(node: Node, client: Client, admin: User) -> None:
    alice = await client.register("alice")
    room_id = await alice.create_room()
    await admin.ok("POST", f"{A}/users/{u(alice.user_id)}/deactivate", {})
    assert (await alice.request("GET", "/_matrix/client/v3/account/whoami")).status == 401
    details = await admin.ok("GET", f"{A}/rooms/{room_id}")
    assert details["members"][alice.user_id] == "leave"
    found = await admin.ok("GET", f"{A}/users/{u(alice.user_id)}")
    assert found["deactivated"] is True
    missing = await admin.request("POST", f"{A}/users/{u('@ghost:' + node.server_name)}/deactivate")
    assert missing.status == 404


async def test_devices(node: Node, client: Client, admin: User) -> None:
    alice = await client.register("alice")
    laptop = await login(client, "alice", "correct horse")
    listed = await admin.ok("GET", f"{A}/users/{u(alice.user_id)}/devices")
    assert listed["total"] == 2
    assert {d["device_id"] for d in listed["devices"]} == {alice.device_id, laptop.device_id}
    await admin.ok("DELETE", f"{A}/users/{u(alice.user_id)}/devices/{laptop.device_id}")
    assert (await laptop.request("GET", "/_matrix/client/v3/account/whoami")).status == 401
    assert (await alice.ok("GET", "/_matrix/client/v3/account/whoami"))["user_id"]
    listed = await admin.ok("GET", f"{A}/users/{u(alice.user_id)}/devices")
    assert [d["device_id"] for d in listed["devices"]] == [alice.device_id]
    again = await admin.request(
        "DELETE", f"{A}/users/{u(alice.user_id)}/devices/{laptop.device_id}"
    )
    assert (again.status, again.body["errcode"]) == (404, "M_NOT_FOUND")


async def test_rooms(node: Node, client: Client, admin: User) -> None:
    alice = await client.register("alice")
    bob = await client.register("bob")
    carol = await client.register("carol")
    rooms = [await alice.create_room(name=f"部屋{i}", preset="public_chat") for i in range(3)]
    await alice.invite(rooms[0], bob.user_id)
    await bob.join(rooms[0])
    await alice.invite(rooms[0], carol.user_id)

    page = await admin.ok("GET", A + "/rooms", params={"limit": "2"})
    assert page["total"] == 3 and len(page["rooms"]) == 2 and page["next_token"] == "2"
    rest = await admin.ok("GET", A + "/rooms", params={"from": "2"})
    assert len(rest["rooms"]) == 1 and "next_token" not in rest
    listed = {r["room_id"]: r for r in page["rooms"] + rest["rooms"]}
    assert set(listed) == set(rooms)
    assert listed[rooms[0]]["joined_members"] == 2
    assert listed[rooms[0]]["name"] == "部屋0"

    details = await admin.ok("GET", f"{A}/rooms/{rooms[0]}")
    assert details["members"] == {
        alice.user_id: "join",
        bob.user_id: "join",
        carol.user_id: "invite",
    }
    state = {(e["type"], e["state_key"]): e["content"] for e in details["state"]}
    assert state[("m.room.name", "")] == {"name": "部屋0"}
    missing = await admin.request("GET", f"{A}/rooms/!nowhere")
    assert (missing.status, missing.body["errcode"]) == (404, "M_NOT_FOUND")
    members = await admin.ok("GET", f"{A}/rooms/{rooms[0]}/members")
    assert sorted(members["members"]) == sorted([alice.user_id, bob.user_id])
    assert members["total"] == 2
    only_state = await admin.ok("GET", f"{A}/rooms/{rooms[0]}/state")
    assert only_state["state"] == details["state"]
    for sub in ("members", "state"):
        assert (await admin.request("GET", f"{A}/rooms/!nowhere/{sub}")).status == 404

    shut = await admin.ok("DELETE", f"{A}/rooms/{rooms[0]}")
    assert sorted(shut["kicked_users"]) == sorted([alice.user_id, bob.user_id, carol.user_id])
    assert shut["failed_to_kick_users"] == [] and shut["closed"] is True
    details = await admin.ok("GET", f"{A}/rooms/{rooms[0]}")
    assert set(details["members"].values()) == {"leave"}
    state = {(e["type"], e["state_key"]): e["content"] for e in details["state"]}
    assert state[("m.room.join_rules", "")] == {"join_rule": "invite"}
    # The room was public: nobody can walk back in.
    rejoin = await bob.request("POST", f"/_matrix/client/v3/join/{rooms[0]}", {})
    assert (rejoin.status, rejoin.body["errcode"]) == (403, "M_FORBIDDEN")
    refused = await bob.request(
        "PUT",
        f"/_matrix/client/v3/rooms/{rooms[0]}/send/m.room.message/t1",
        {"msgtype": "m.text", "body": "still here?"},
    )
    assert refused.status == 403
    assert (await admin.request("DELETE", f"{A}/rooms/!nowhere")).status == 404


async def test_registration_tokens(node: Node, client: Client, admin: User) -> None:
    made = await admin.ok("POST", A + "/registration_tokens/new", {"uses_allowed": 1})
    token = made["token"]
    assert len(token) == 16
    assert made == {
        "token": token,
        "uses_allowed": 1,
        "pending": 0,
        "completed": 0,
        "expiry_time": None,
    }
    named = await admin.ok(
        "POST",
        A + "/registration_tokens/new",
        {"token": "shiyakusho-2026", "expiry_time": node.services.clock.now_ms() + 3_600_000},
    )
    assert named["token"] == "shiyakusho-2026"
    short = await admin.ok("POST", A + "/registration_tokens/new", {"length": 5})
    assert len(short["token"]) == 5
    unlimited = await admin.ok("POST", A + "/registration_tokens/new")
    assert unlimited["uses_allowed"] is None

    listed = await admin.ok("GET", A + "/registration_tokens")
    assert {t["token"] for t in listed["registration_tokens"]} == {
        token,
        "shiyakusho-2026",
        short["token"],
        unlimited["token"],
    }
    assert await admin.ok("GET", f"{A}/registration_tokens/{token}") == made

    # The token registers one account, then is used up.
    register = {
        "username": "newcomer",
        "password": "pw",
        "auth": {"type": "m.login.registration_token", "token": token},
    }
    flows = await client.request("POST", "/_matrix/client/v3/register", {"username": "x"})
    assert flows.status == 401
    register["auth"]["session"] = flows.body["session"]  # type: ignore[index]
    await client.ok("POST", "/_matrix/client/v3/register", register)
    used = await admin.ok("GET", f"{A}/registration_tokens/{token}")
    assert used["completed"] == 1
    invalid = await admin.ok("GET", A + "/registration_tokens", params={"valid": "false"})
    assert [t["token"] for t in invalid["registration_tokens"]] == [token]
    valid = await admin.ok("GET", A + "/registration_tokens", params={"valid": "true"})
    assert token not in {t["token"] for t in valid["registration_tokens"]}

    # Raise the limit; clear the expiry of the other one.
    raised = await admin.ok("PUT", f"{A}/registration_tokens/{token}", {"uses_allowed": 5})
    assert raised["uses_allowed"] == 5 and raised["completed"] == 1
    cleared = await admin.ok(
        "PUT", f"{A}/registration_tokens/shiyakusho-2026", {"expiry_time": None}
    )
    assert cleared["expiry_time"] is None and cleared["uses_allowed"] is None

    await admin.ok("DELETE", f"{A}/registration_tokens/{token}")
    gone = await admin.request("GET", f"{A}/registration_tokens/{token}")
    assert (gone.status, gone.body["errcode"]) == (404, "M_NOT_FOUND")
    assert (await admin.request("DELETE", f"{A}/registration_tokens/{token}")).status == 404
    assert (await admin.request("PUT", f"{A}/registration_tokens/{token}", {})).status == 404


async def test_registration_tokens_bad_input(node: Node, client: Client, admin: User) -> None:
    new = A + "/registration_tokens/new"
    past = node.services.clock.now_ms() - 1000
    cases: list[tuple[Any, str]] = [
        ({"uses_allowed": -1}, "M_INVALID_PARAM"),
        ({"uses_allowed": 2**31}, "M_INVALID_PARAM"),
        ({"expiry_time": 2**63}, "M_INVALID_PARAM"),
        ({"expiry_time": 10**40}, "M_INVALID_PARAM"),
        ({"uses_allowed": "3"}, "M_BAD_JSON"),
        ({"uses_allowed": True}, "M_BAD_JSON"),
        ({"expiry_time": past}, "M_INVALID_PARAM"),
        ({"expiry_time": 1.5}, "M_BAD_JSON"),
        ({"length": 0}, "M_INVALID_PARAM"),
        ({"length": 65}, "M_INVALID_PARAM"),
        ({"token": "has space"}, "M_INVALID_PARAM"),
        ({"token": "x" * 65}, "M_INVALID_PARAM"),
        ({"token": ""}, "M_INVALID_PARAM"),
        ({"token": 7}, "M_BAD_JSON"),
    ]
    for body, errcode in cases:
        response = await admin.request("POST", new, body)
        assert (response.status, response.body["errcode"]) == (400, errcode), body
    assert (await admin.ok("GET", A + "/registration_tokens"))["registration_tokens"] == []

    await admin.ok("POST", new, {"token": "dup"})
    duplicate = await admin.request("POST", new, {"token": "dup"})
    assert (duplicate.status, duplicate.body["errcode"]) == (400, "M_INVALID_PARAM")
    for body, errcode in [
        ({"uses_allowed": -5}, "M_INVALID_PARAM"),
        ({"uses_allowed": 10**30}, "M_INVALID_PARAM"),
        ({"expiry_time": past}, "M_INVALID_PARAM"),
        ({"expiry_time": "soon"}, "M_BAD_JSON"),
        ({"pending": 3}, "M_INVALID_PARAM"),
    ]:
        response = await admin.request("PUT", f"{A}/registration_tokens/dup", body)
        assert (response.status, response.body["errcode"]) == (400, errcode), body
    query = await admin.request("GET", A + "/registration_tokens", params={"valid": "maybe"})
    assert (query.status, query.body["errcode"]) == (400, "M_INVALID_PARAM")
    assert await admin.ok("GET", f"{A}/registration_tokens/dup") == {
        "token": "dup",
        "uses_allowed": None,
        "pending": 0,
        "completed": 0,
        "expiry_time": None,
    }


ODD_VALUES: list[Any] = [None, True, False, -1, 0, 2**64, -(2**70), 1.5, "", "☃" * 300, [], {}]


async def test_odd_values_never_500(node: Node, client: Client, admin: User) -> None:
    """Every field of every admin body, given odd values: an answer, never a server error."""
    await admin.ok("POST", A + "/registration_tokens/new", {"token": "odd"})
    endpoints = [
        (
            "PUT",
            f"{A}/users/{u('@odd:' + node.server_name)}",
            ("password", "displayname", "admin", "deactivated", "logout_devices"),
        ),
        (
            "POST",
            A + "/registration_tokens/new",
            ("token", "length", "uses_allowed", "expiry_time"),
        ),
        ("PUT", A + "/registration_tokens/odd", ("uses_allowed", "expiry_time")),
    ]
    for method, path, fields in endpoints:
        for field in fields:
            for value in ODD_VALUES:
                response = await admin.request(method, path, {field: value})
                assert response.status in (200, 201, 400), (path, field, value, response)
                if response.status == 400:
                    assert response.body["errcode"].startswith("M_")
    for params in ({"from": "-5"}, {"limit": "0"}, {"from": str(2**40)}, {"limit": "x"}):
        for path in ("/users", "/rooms"):
            response = await admin.request("GET", A + path, params=params)
            assert response.status in (200, 400), (path, params, response)


async def test_token_validity_follows_the_registration_rule(
    node: Node, client: Client, admin: User
) -> None:
    """``/register/m.login.registration_token/validity`` says valid exactly when a
    registration with the token could complete: not unknown, used up or expired (it used to
    ignore expiry)."""
    import asyncio

    validity = "/_matrix/client/v1/register/m.login.registration_token/validity"

    async def valid(token: str) -> bool:
        body = await client.ok("GET", validity, params={"token": token})
        return bool(body["valid"])

    soon = node.services.clock.now_ms() + 1_000
    await admin.ok("POST", A + "/registration_tokens/new", {"token": "soon", "expiry_time": soon})
    await admin.ok("POST", A + "/registration_tokens/new", {"token": "once", "uses_allowed": 1})
    assert await valid("soon") and await valid("once")
    assert not await valid("never-made")
    await client.ok(
        "POST", "/_matrix/client/v3/register",
        {"username": "newcomer", "password": "a long password",
         "auth": {"type": "m.login.registration_token", "token": "once"}},
    )  # fmt: skip
    assert not await valid("once")
    await asyncio.sleep(1.1)
    assert not await valid("soon")
    expired = await client.request(
        "POST", "/_matrix/client/v3/register",
        {"username": "late", "password": "a long password",
         "auth": {"type": "m.login.registration_token", "token": "soon"}},
    )  # fmt: skip
    assert expired.status == 401
