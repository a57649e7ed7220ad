"""Device management over real HTTP: list, show, rename, delete with UIA, logout; the keys of
a removed device disappear and room members are told.  Responses are checked against the
spec's OpenAPI."""

from __future__ import annotations

from typing import Any

from tests.homeserver.client import User
from tests.homeserver.conftest import Node
from tests.homeserver.keyhelpers import (
    V3,
    Device,
    upload_keys,
)
from tests.homeserver.openapi import ValidatingClient

PASSWORD = "correct horse"


async def login(c: ValidatingClient, user: User, name: str | None = None) -> User:
    body: dict[str, Any] = {
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": user.user_id},
        "password": PASSWORD,
    }
    if name is not None:
        body["initial_device_display_name"] = name
    result = await c.ok("POST", f"{V3}/login", body)
    return User(c, result["user_id"], result["access_token"], result["device_id"])


async def device_ids(user: User) -> list[str]:
    listed = await user.ok("GET", f"{V3}/devices")
    return sorted(d["device_id"] for d in listed["devices"])


async def key_devices(viewer: User, user_id: str) -> list[str]:
    found = await viewer.ok("POST", f"{V3}/keys/query", {"device_keys": {user_id: []}})
    return sorted(found["device_keys"][user_id])


async def test_list_show_and_rename(node: Node, vclient: ValidatingClient) -> None:
    alice = await vclient.register("alice")
    phone = await login(vclient, alice, "職員スマホ")
    listed = await alice.ok("GET", f"{V3}/devices")
    assert sorted(d["device_id"] for d in listed["devices"]) == sorted(
        [alice.device_id, phone.device_id]
    )
    shown = await alice.ok("GET", f"{V3}/devices/{phone.device_id}")
    assert shown["device_id"] == phone.device_id
    assert shown["display_name"] == "職員スマホ"
    assert isinstance(shown["last_seen_ts"], int)

    await alice.ok("PUT", f"{V3}/devices/{phone.device_id}", {"display_name": "防災用端末"})
    renamed = await phone.ok("GET", f"{V3}/devices/{phone.device_id}")
    assert renamed["display_name"] == "防災用端末"
    # An empty body changes nothing.
    await alice.ok("PUT", f"{V3}/devices/{phone.device_id}", {})
    assert (await alice.ok("GET", f"{V3}/devices/{phone.device_id}"))["display_name"] == (
        "防災用端末"
    )

    # Other users' devices and unknown devices are simply not found.
    bob = await vclient.register("bob")
    for user, device_id in ((bob, phone.device_id), (alice, "NOSUCHDEV")):
        missing = await user.request("GET", f"{V3}/devices/{device_id}")
        assert missing.status == 404 and missing.body["errcode"] == "M_NOT_FOUND"
        rename = await user.request("PUT", f"{V3}/devices/{device_id}", {"display_name": "x"})
        assert rename.status == 404 and rename.body["errcode"] == "M_NOT_FOUND"
    bad = await alice.request("PUT", f"{V3}/devices/{phone.device_id}", {"display_name": 5})
    assert bad.status == 400 and bad.body["errcode"] == "M_BAD_JSON"
    assert (await vclient.request("GET", f"{V3}/devices")).status == 401
    vclient.check(
        "GET /_matrix/client/v3/devices",
        "GET /_matrix/client/v3/devices/{deviceId}",
        "PUT /_matrix/client/v3/devices/{deviceId}",
    )


async def test_rename_shows_in_keys_and_tells_room_members(
    node: Node, vclient: ValidatingClient
) -> None:
    alice = await vclient.register("alice")
    bob = await vclient.register("bob")
    room_id = await alice.create_room()
    await alice.invite(room_id, bob.user_id)
    await bob.join(room_id)
    await upload_keys(alice, device_keys=Device(alice).device_keys())
    since = (await bob.sync())["next_batch"]
    await alice.ok("PUT", f"{V3}/devices/{alice.device_id}", {"display_name": "庁舎PC"})
    assert alice.user_id in (await bob.sync(since=since))["device_lists"]["changed"]
    found = await bob.ok("POST", f"{V3}/keys/query", {"device_keys": {alice.user_id: []}})
    unsigned = found["device_keys"][alice.user_id][alice.device_id]["unsigned"]
    assert unsigned == {"device_display_name": "庁舎PC"}


async def test_delete_device_needs_the_password(node: Node, vclient: ValidatingClient) -> None:
    alice = await vclient.register("alice")
    bob = await vclient.register("bob")
    room_id = await alice.create_room()
    await alice.invite(room_id, bob.user_id)
    await bob.join(room_id)
    phone = await login(vclient, alice, "phone")
    await upload_keys(phone, device_keys=Device(phone).device_keys())
    assert await key_devices(bob, alice.user_id) == [phone.device_id]
    since = (await bob.sync())["next_batch"]

    path = f"{V3}/devices/{phone.device_id}"
    challenge = await alice.request("DELETE", path, {})
    assert challenge.status == 401
    assert challenge.body["flows"] == [{"stages": ["m.login.password"]}]
    session = challenge.body["session"]
    wrong = await alice.request(
        "DELETE",
        path,
        {"auth": {"type": "m.login.password", "password": "wrong", "session": session}},
    )
    assert wrong.status == 401
    assert wrong.body["errcode"] == "M_FORBIDDEN"
    assert wrong.body["flows"] == [{"stages": ["m.login.password"]}]
    assert phone.device_id in await device_ids(alice)

    await alice.ok(
        "DELETE",
        path,
        {
            "auth": {
                "type": "m.login.password",
                "identifier": {"type": "m.id.user", "user": "alice"},
                "password": PASSWORD,
                "session": session,
            }
        },
    )
    assert await device_ids(alice) == [alice.device_id]
    gone = await phone.request("GET", f"{V3}/account/whoami")
    assert gone.status == 401 and gone.body["errcode"] == "M_UNKNOWN_TOKEN"
    assert await key_devices(bob, alice.user_id) == []
    assert alice.user_id in (await bob.sync(since=since))["device_lists"]["changed"]

    again = await alice.request("DELETE", path, {})
    assert again.status == 404 and again.body["errcode"] == "M_NOT_FOUND"
    vclient.check("DELETE /_matrix/client/v3/devices/{deviceId}")


async def test_delete_devices_in_bulk(node: Node, vclient: ValidatingClient) -> None:
    alice = await vclient.register("alice")
    one = await login(vclient, alice)
    two = await login(vclient, alice)
    body: dict[str, Any] = {"devices": [one.device_id, two.device_id, "NOSUCHDEV"]}
    challenge = await alice.request("POST", f"{V3}/delete_devices", body)
    assert challenge.status == 401 and "session" in challenge.body
    await alice.ok(
        "POST",
        f"{V3}/delete_devices",
        {**body, "auth": {"type": "m.login.password", "password": PASSWORD}},
    )
    assert await device_ids(alice) == [alice.device_id]
    for bad in ({}, {"devices": "ABC"}, {"devices": [1]}):
        response = await alice.request("POST", f"{V3}/delete_devices", bad)
        assert response.status == 400 and response.body["errcode"] == "M_BAD_JSON", bad
    vclient.check("POST /_matrix/client/v3/delete_devices")


async def test_logout_removes_the_device_and_its_keys(
    node: Node, vclient: ValidatingClient
) -> None:
    alice = await vclient.register("alice")
    laptop = await login(vclient, alice, "laptop")
    laptop_device = Device(laptop)
    await upload_keys(
        laptop,
        device_keys=laptop_device.device_keys(),
        one_time_keys=laptop_device.one_time_keys(2),
        fallback_keys=laptop_device.fallback_keys(),
    )
    await upload_keys(alice, device_keys=Device(alice).device_keys())
    assert await key_devices(alice, alice.user_id) == sorted([alice.device_id, laptop.device_id])
    await laptop.ok("POST", f"{V3}/logout", {})
    assert await device_ids(alice) == [alice.device_id]
    assert await key_devices(alice, alice.user_id) == [alice.device_id]
    missing = await alice.request("GET", f"{V3}/devices/{laptop.device_id}")
    assert missing.status == 404
    # The keys the laptop left behind are never handed out.
    claimed = await alice.ok(
        "POST",
        f"{V3}/keys/claim",
        {"one_time_keys": {alice.user_id: {laptop.device_id: "signed_curve25519"}}},
    )
    assert claimed["one_time_keys"] == {}
