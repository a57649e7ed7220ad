"""End-to-end encryption over real HTTP: device and one-time keys, fallback keys, claims,
device list tracking, to-device messages and cross-signing; every response is checked
against the spec's OpenAPI."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import vodozemac
from sqlalchemy import func, select

from federation.signing import encode_base64, sign_json, signing_bytes, verify_json
from homeserver.storage.schema import to_device
from tests.homeserver.client import User
from tests.homeserver.conftest import Node
from tests.homeserver.keyhelpers import (
    MEGOLM,
    OLM,
    V3,
    CrossSigningKey,
    Device,
    upload_keys,
)
from tests.homeserver.openapi import ValidatingClient

SIGNED = "signed_curve25519"


async def login(c: ValidatingClient, user: User, name: str | None = None) -> User:
    body: dict[str, Any] = {
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": user.user_id},
        "password": "correct horse",
    }
    if name is not None:
        body["initial_device_display_name"] = name
    result = await c.ok("POST", f"{V3}/login", body)
    return User(c, result["user_id"], result["access_token"], result["device_id"])


async def shared_room(*users: User) -> str:
    room_id = await users[0].create_room(preset="private_chat")
    for other in users[1:]:
        await users[0].invite(room_id, other.user_id)
        await other.join(room_id)
    return room_id


# ----------------------------------------------------------------------------- keys


async def test_upload_query_claim_and_counts(node: Node, vclient: ValidatingClient) -> None:
    alice = await vclient.register("alice")
    bob = await vclient.register("bob")
    device = Device(alice)
    keys = device.device_keys()
    otks = device.one_time_keys(3)
    fallback = device.fallback_keys()
    uploaded = await upload_keys(
        alice, device_keys=keys, one_time_keys=otks, fallback_keys=fallback
    )
    assert uploaded == {"one_time_key_counts": {SIGNED: 3}}

    synced = await alice.sync()
    assert synced["device_one_time_keys_count"] == {SIGNED: 3}
    assert synced["device_unused_fallback_key_types"] == [SIGNED]

    # Bob sees exactly what Alice uploaded, self-signature intact, plus the display name.
    found = await bob.ok(
        "POST", f"{V3}/keys/query", {"device_keys": {alice.user_id: []}, "timeout": 10000}
    )
    got = found["device_keys"][alice.user_id][alice.device_id]
    assert {k: v for k, v in got.items() if k != "unsigned"} == keys
    assert "device_display_name" not in got["unsigned"]  # registered without a name
    verify_json(got, alice.user_id, device.key_id, device.ed25519.public_key_base64)
    assert found["failures"] == {}
    # Asking for a named device, an unknown device and an unknown local user.
    nobody = f"@nobody:{node.server_name}"
    named = await bob.ok(
        "POST",
        f"{V3}/keys/query",
        {"device_keys": {alice.user_id: [alice.device_id, "NOSUCH"], nobody: []}},
    )
    assert list(named["device_keys"][alice.user_id]) == [alice.device_id]
    assert named["device_keys"][nobody] == {}

    # Each one-time key is handed out once; then the fallback key, again and again.
    claimed: list[str] = []
    for _ in range(3):
        result = await bob.ok(
            "POST",
            f"{V3}/keys/claim",
            {"one_time_keys": {alice.user_id: {alice.device_id: SIGNED}}},
        )
        ((key_id, key),) = result["one_time_keys"][alice.user_id][alice.device_id].items()
        assert otks[key_id] == key
        claimed.append(key_id)
    assert sorted(claimed) == sorted(otks)
    for _ in range(2):
        result = await bob.ok(
            "POST",
            f"{V3}/keys/claim",
            {"one_time_keys": {alice.user_id: {alice.device_id: SIGNED}}},
        )
        assert result["one_time_keys"][alice.user_id][alice.device_id] == fallback
    # Unknown algorithm or device: nothing, not an error.
    nothing = await bob.ok(
        "POST",
        f"{V3}/keys/claim",
        {"one_time_keys": {alice.user_id: {alice.device_id: "other_alg", "NOSUCH": SIGNED}}},
    )
    assert nothing["one_time_keys"] == {}

    since = synced["next_batch"]
    later = await alice.sync(since=since)
    assert later["device_one_time_keys_count"] == {SIGNED: 0}
    assert later["device_unused_fallback_key_types"] == []
    # A new fallback key is unused again; re-uploading the same one keeps it used.
    await upload_keys(alice, fallback_keys=fallback)
    assert (await alice.sync())["device_unused_fallback_key_types"] == []
    await upload_keys(alice, fallback_keys=device.fallback_keys())
    assert (await alice.sync())["device_unused_fallback_key_types"] == [SIGNED]
    vclient.check(
        "POST /_matrix/client/v3/keys/upload",
        "POST /_matrix/client/v3/keys/query",
        "POST /_matrix/client/v3/keys/claim",
    )


async def test_one_time_keys_are_claimed_once_under_concurrency(
    node: Node, vclient: ValidatingClient
) -> None:
    alice = await vclient.register("alice")
    bob = await vclient.register("bob")
    device = Device(alice)
    otks = device.one_time_keys(10)
    await upload_keys(alice, device_keys=device.device_keys(), one_time_keys=otks)

    async def claim() -> dict[str, Any]:
        result: dict[str, Any] = await bob.ok(
            "POST",
            f"{V3}/keys/claim",
            {"one_time_keys": {alice.user_id: {alice.device_id: SIGNED}}},
        )
        return result["one_time_keys"].get(alice.user_id, {}).get(alice.device_id, {})

    results = await asyncio.gather(*(claim() for _ in range(14)))
    handed_out = [kid for r in results for kid in r]
    assert sorted(handed_out) == sorted(otks)  # each key once, and no more than there were
    assert sum(1 for r in results if not r) == 4


async def test_one_time_key_reupload_and_conflict(node: Node, vclient: ValidatingClient) -> None:
    alice = await vclient.register("alice")
    device = Device(alice)
    otks = device.one_time_keys(2)
    assert (await upload_keys(alice, one_time_keys=otks))["one_time_key_counts"][SIGNED] == 2
    # The same keys again (a retried request) change nothing.
    assert (await upload_keys(alice, one_time_keys=otks))["one_time_key_counts"][SIGNED] == 2
    key_id = next(iter(otks))
    clash = await alice.request(
        "POST", f"{V3}/keys/upload", {"one_time_keys": {key_id: device.signed_key()}}
    )
    assert clash.status == 400 and clash.body["errcode"] == "M_INVALID_PARAM"
    # Device keys re-uploaded unchanged are fine; the user's counts stay.
    keys = device.device_keys()
    await upload_keys(alice, device_keys=keys)
    assert (await upload_keys(alice, device_keys=keys))["one_time_key_counts"][SIGNED] == 2
    # New identity keys for the device (say its ID was reused): the old identity's
    # one-time and fallback keys are dropped, the new ones kept.
    await upload_keys(alice, fallback_keys=device.fallback_keys())
    renewed = Device(alice)
    result = await upload_keys(
        alice, device_keys=renewed.device_keys(), one_time_keys=renewed.one_time_keys(1)
    )
    assert result["one_time_key_counts"] == {SIGNED: 1}
    assert (await alice.sync())["device_unused_fallback_key_types"] == []
    vclient.check("POST /_matrix/client/v3/keys/upload")


async def test_bad_key_requests_are_matrix_errors(node: Node, vclient: ValidatingClient) -> None:
    alice = await vclient.register("alice")
    bob = await vclient.register("bob")
    device = Device(alice)
    good = device.device_keys()
    bad_uploads: list[tuple[Any, str]] = [
        ({"device_keys": "nope"}, "M_BAD_JSON"),
        ({"device_keys": {**good, "user_id": bob.user_id}}, "M_INVALID_PARAM"),
        ({"device_keys": {**good, "device_id": "OTHER"}}, "M_INVALID_PARAM"),
        ({"device_keys": {**good, "keys": {"ed25519": "x"}}}, "M_INVALID_PARAM"),
        ({"device_keys": {**good, "keys": {"ed25519:OTHER": "x"}}}, "M_INVALID_PARAM"),
        ({"device_keys": {**good, "keys": {"ed25519:" + alice.device_id: 5}}}, "M_BAD_JSON"),
        ({"device_keys": {**good, "algorithms": "all"}}, "M_BAD_JSON"),
        ({"device_keys": {k: v for k, v in good.items() if k != "signatures"}}, "M_MISSING_PARAM"),
        ({"device_keys": {**good, "signatures": {"not a user": {}}}}, "M_INVALID_PARAM"),
        ({"one_time_keys": ["k"]}, "M_BAD_JSON"),
        ({"one_time_keys": {"nocolon": "abc"}}, "M_INVALID_PARAM"),
        ({"one_time_keys": {"signed_curve25519:A": {"nokey": 1}}}, "M_BAD_JSON"),
        ({"one_time_keys": {"signed_curve25519:A": 7}}, "M_BAD_JSON"),
        ({"fallback_keys": {"signed_curve25519:A": "unsigned"}}, "M_BAD_JSON"),
    ]
    for body, errcode in bad_uploads:
        response = await alice.request("POST", f"{V3}/keys/upload", body)
        assert (response.status, response.body["errcode"]) == (400, errcode), body
    not_json = await alice.request(
        "POST", f"{V3}/keys/upload", data=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert not_json.status == 400 and not_json.body["errcode"] == "M_NOT_JSON"

    bad_queries: list[tuple[str, Any, str]] = [
        ("query", {}, "M_BAD_JSON"),
        ("query", {"device_keys": []}, "M_BAD_JSON"),
        ("query", {"device_keys": {alice.user_id: "DEVICE"}}, "M_BAD_JSON"),
        ("query", {"device_keys": {alice.user_id: [1]}}, "M_BAD_JSON"),
        ("query", {"device_keys": {"alice": []}}, "M_INVALID_PARAM"),
        ("claim", {"one_time_keys": "x"}, "M_BAD_JSON"),
        ("claim", {"one_time_keys": {alice.user_id: ["D"]}}, "M_BAD_JSON"),
        ("claim", {"one_time_keys": {alice.user_id: {"D": 3}}}, "M_BAD_JSON"),
        ("claim", {"one_time_keys": {"x": {}}}, "M_INVALID_PARAM"),
        ("signatures/upload", {"x": {}}, "M_BAD_JSON"),
        ("device_signing/upload", {"master_key": "x"}, "M_BAD_JSON"),
        ("device_signing/upload", {}, "M_MISSING_PARAM"),
    ]
    for endpoint, body, errcode in bad_queries:
        response = await bob.request("POST", f"{V3}/keys/{endpoint}", body)
        assert (response.status, response.body["errcode"]) == (400, errcode), (endpoint, body)

    for params in ({}, {"from": "s1_0"}, {"from": "garbage", "to": "s1_0"}):
        response = await alice.request("GET", f"{V3}/keys/changes", params=params)
        assert response.status == 400, params
        assert response.body["errcode"] in ("M_MISSING_PARAM", "M_INVALID_PARAM")
    unauthenticated = await vclient.request("POST", f"{V3}/keys/query", {"device_keys": {}})
    assert unauthenticated.status == 401 and unauthenticated.body["errcode"] == "M_MISSING_TOKEN"
    assert not vclient.mismatches, vclient.mismatches


# ----------------------------------------------------------------------------- device lists


async def test_device_list_changes_follow_shared_rooms(
    node: Node, vclient: ValidatingClient
) -> None:
    alice = await vclient.register("alice")
    bob = await vclient.register("bob")
    carol = await vclient.register("carol")
    room_id = await shared_room(alice, bob)
    bob_start = (await bob.sync())["next_batch"]
    carol_start = (await carol.sync())["next_batch"]

    await upload_keys(alice, device_keys=Device(alice).device_keys())
    bob_sync = await bob.sync(since=bob_start)
    assert alice.user_id in bob_sync["device_lists"]["changed"]
    assert bob_sync["device_lists"]["left"] == []
    changes = await bob.ok(
        "GET", f"{V3}/keys/changes", params={"from": bob_start, "to": bob_sync["next_batch"]}
    )
    assert alice.user_id in changes["changed"] and changes["left"] == []
    # Carol shares no room with Alice: nothing for her.
    carol_sync = await carol.sync(since=carol_start)
    assert alice.user_id not in carol_sync.get("device_lists", {}).get("changed", [])
    # Alice's own other devices learn of it too.
    own = await alice.ok(
        "GET", f"{V3}/keys/changes", params={"from": bob_start, "to": bob_sync["next_batch"]}
    )
    assert alice.user_id in own["changed"]
    # Uploading the same keys again is not a change.
    quiet = await bob.sync(since=bob_sync["next_batch"])
    assert quiet.get("device_lists", {}).get("changed", []) == []

    # Carol joins: Bob must fetch her devices; Carol must fetch Alice's and Bob's.
    before_join = (await bob.sync())["next_batch"]
    carol_before = (await carol.sync())["next_batch"]
    await alice.invite(room_id, carol.user_id)
    await carol.join(room_id)
    joined = await bob.sync(since=before_join)
    assert carol.user_id in joined["device_lists"]["changed"]
    carol_joined = await carol.sync(since=carol_before)
    assert set(carol_joined["device_lists"]["changed"]) == {alice.user_id, bob.user_id}

    # Carol leaves the only room she shared with Bob: she is in "left" for him.
    before_leave = joined["next_batch"]
    await carol.ok("POST", f"{V3}/rooms/{room_id}/leave", {})
    left = await bob.sync(since=before_leave)
    assert left["device_lists"]["left"] == [carol.user_id]
    assert carol.user_id not in left["device_lists"]["changed"]
    after = await bob.ok(
        "GET", f"{V3}/keys/changes", params={"from": before_leave, "to": left["next_batch"]}
    )
    assert after["left"] == [carol.user_id]
    vclient.check("GET /_matrix/client/v3/keys/changes", "GET /_matrix/client/v3/sync")


async def test_key_upload_wakes_a_waiting_sync(node: Node, vclient: ValidatingClient) -> None:
    alice = await vclient.register("alice")
    bob = await vclient.register("bob")
    await shared_room(alice, bob)
    since = (await bob.sync())["next_batch"]
    started = time.monotonic()
    waiting = asyncio.create_task(bob.sync(since=since, timeout=20_000))
    await asyncio.sleep(0.3)
    assert not waiting.done()
    await upload_keys(alice, device_keys=Device(alice).device_keys())
    woken = await asyncio.wait_for(waiting, 10)
    assert alice.user_id in woken["device_lists"]["changed"]
    assert time.monotonic() - started < 10


# ----------------------------------------------------------------------------- to-device


async def test_to_device_delivery_idempotence_and_ack(
    node: Node, vclient: ValidatingClient
) -> None:
    alice = await vclient.register("alice")
    alice2 = await login(vclient, alice, "二台目")
    bob = await vclient.register("bob")
    a1_start = (await alice.sync())["next_batch"]
    a2_start = (await alice2.sync())["next_batch"]

    path = f"{V3}/sendToDevice/m.room_key_request/txn1"
    body = {"messages": {alice.user_id: {alice.device_id: {"action": "request", "n": 1}}}}
    assert await bob.ok("PUT", path, body) == {}
    assert await bob.ok("PUT", path, body) == {}  # retried: delivered once
    first = await alice.sync(since=a1_start)
    assert first["to_device"]["events"] == [
        {
            "sender": bob.user_id,
            "type": "m.room_key_request",
            "content": {"action": "request", "n": 1},
        }
    ]
    other = await alice2.sync(since=a2_start)
    assert other["to_device"]["events"] == []

    # Not acknowledged yet: the same since token gets the message again.
    again = await alice.sync(since=a1_start)
    assert len(again["to_device"]["events"]) == 1
    # Acknowledged by syncing from the next token: gone, also for an old token.
    acked = await alice.sync(since=first["next_batch"])
    assert acked["to_device"]["events"] == []
    assert (await alice.sync(since=a1_start))["to_device"]["events"] == []
    async with node.services.db.read() as conn:
        left = (
            await conn.execute(
                select(func.count())
                .select_from(to_device)
                .where(to_device.c.user_id == alice.user_id)
            )
        ).scalar()
    assert left == 0

    # "*": every device of the user; the same txn ID from another device is another message.
    star = {"messages": {alice.user_id: {"*": {"hello": "all"}}}}
    await bob.ok("PUT", f"{V3}/sendToDevice/m.custom/txn1", star)
    one = await alice.sync(since=acked["next_batch"])
    two = await alice2.sync(since=other["next_batch"])
    for synced in (one, two):
        assert [e["content"] for e in synced["to_device"]["events"]] == [{"hello": "all"}]
        assert synced["to_device"]["events"][0]["type"] == "m.custom"
    bob2 = await login(vclient, bob)
    await bob2.ok("PUT", f"{V3}/sendToDevice/m.custom/txn1", star)
    assert len((await alice.sync(since=one["next_batch"]))["to_device"]["events"]) == 1

    # Unknown devices and remote users are dropped quietly.
    await bob.ok(
        "PUT",
        f"{V3}/sendToDevice/m.custom/txn9",
        {"messages": {alice.user_id: {"NOSUCH": {}}, "@x:elsewhere.example": {"D": {}}}},
    )
    vclient.check("PUT /_matrix/client/v3/sendToDevice/{eventType}/{txnId}")


async def test_to_device_wakes_recipient_and_rejects_bad_bodies(
    node: Node, vclient: ValidatingClient
) -> None:
    alice = await vclient.register("alice")
    bob = await vclient.register("bob")
    since = (await alice.sync())["next_batch"]
    waiting = asyncio.create_task(alice.sync(since=since, timeout=20_000))
    await asyncio.sleep(0.3)
    await bob.ok(
        "PUT",
        f"{V3}/sendToDevice/m.dummy/w1",
        {"messages": {alice.user_id: {alice.device_id: {}}}},
    )
    woken = await asyncio.wait_for(waiting, 10)
    assert woken["to_device"]["events"] == [
        {"sender": bob.user_id, "type": "m.dummy", "content": {}}
    ]

    for body, errcode in [
        ({}, "M_BAD_JSON"),
        ({"messages": []}, "M_BAD_JSON"),
        ({"messages": {"bob": {}}}, "M_INVALID_PARAM"),
        ({"messages": {alice.user_id: []}}, "M_BAD_JSON"),
        ({"messages": {alice.user_id: {alice.device_id: "text"}}}, "M_BAD_JSON"),
    ]:
        response = await bob.request(
            "PUT", f"{V3}/sendToDevice/m.x/bad{errcode}{len(str(body))}", body
        )
        assert (response.status, response.body["errcode"]) == (400, errcode), body
    # A rejected request does not burn its transaction ID.
    path = f"{V3}/sendToDevice/m.x/retry"
    assert (await bob.request("PUT", path, {"messages": []})).status == 400
    await bob.ok("PUT", path, {"messages": {alice.user_id: {alice.device_id: {"ok": 1}}}})
    later = await alice.sync(since=woken["next_batch"])
    assert [e["content"] for e in later["to_device"]["events"]] == [{"ok": 1}]
    assert not vclient.mismatches, vclient.mismatches


# ----------------------------------------------------------------------------- cross-signing


async def test_cross_signing_bootstrap_and_signatures(
    node: Node, vclient: ValidatingClient
) -> None:
    alice = await vclient.register("alice")
    bob = await vclient.register("bob")
    await shared_room(alice, bob)
    device = Device(alice)
    keys = device.device_keys()
    await upload_keys(alice, device_keys=keys)

    master = CrossSigningKey(alice.user_id, "master")
    self_signing = CrossSigningKey(alice.user_id, "self_signing")
    user_signing = CrossSigningKey(alice.user_id, "user_signing")
    body = {
        "master_key": master.public_key(),
        "self_signing_key": self_signing.public_key(signed_by=master),
        "user_signing_key": user_signing.public_key(signed_by=master),
    }
    # The first upload needs no UIA; the same keys again neither (idempotent retry).
    assert await alice.ok("POST", f"{V3}/keys/device_signing/upload", body) == {}
    assert await alice.ok("POST", f"{V3}/keys/device_signing/upload", body) == {}

    seen_by_bob = await bob.ok("POST", f"{V3}/keys/query", {"device_keys": {alice.user_id: []}})
    assert seen_by_bob["master_keys"][alice.user_id] == body["master_key"]
    assert seen_by_bob["self_signing_keys"][alice.user_id] == body["self_signing_key"]
    assert alice.user_id not in seen_by_bob["user_signing_keys"]
    seen_by_alice = await alice.ok("POST", f"{V3}/keys/query", {"device_keys": {alice.user_id: []}})
    assert seen_by_alice["user_signing_keys"][alice.user_id] == body["user_signing_key"]

    # Replacing keys needs the password.
    new_master = CrossSigningKey(alice.user_id, "master")
    replace = {"master_key": new_master.public_key()}
    challenge = await alice.request("POST", f"{V3}/keys/device_signing/upload", replace)
    assert challenge.status == 401
    assert challenge.body["flows"] == [{"stages": ["m.login.password"]}]
    wrong = await alice.request(
        "POST",
        f"{V3}/keys/device_signing/upload",
        {
            **replace,
            "auth": {
                "type": "m.login.password",
                "password": "nope",
                "session": challenge.body["session"],
            },
        },
    )
    assert wrong.status == 401 and wrong.body["errcode"] == "M_FORBIDDEN"
    # A self-signing key not signed by the master key is refused.
    unsigned = await alice.request(
        "POST",
        f"{V3}/keys/device_signing/upload",
        {"self_signing_key": CrossSigningKey(alice.user_id, "self_signing").public_key()},
    )
    assert unsigned.status in (400, 401)
    mis_usage = await alice.request(
        "POST",
        f"{V3}/keys/device_signing/upload",
        {"master_key": {**master.public_key(), "usage": ["self_signing"]}},
    )
    assert mis_usage.status == 400 and mis_usage.body["errcode"] == "M_INVALID_PARAM"

    # Alice signs her device with her self-signing key; Bob sees it after a device list change.
    since = (await bob.sync())["next_batch"]
    signed_device = self_signing.sign(keys)
    result = await alice.ok(
        "POST",
        f"{V3}/keys/signatures/upload",
        {alice.user_id: {alice.device_id: signed_device}},
    )
    assert result == {"failures": {}}
    assert alice.user_id in (await bob.sync(since=since))["device_lists"]["changed"]
    found = await bob.ok("POST", f"{V3}/keys/query", {"device_keys": {alice.user_id: []}})
    signatures = found["device_keys"][alice.user_id][alice.device_id]["signatures"]
    assert (
        signatures[alice.user_id][self_signing.key_id]
        == (signed_device["signatures"][alice.user_id][self_signing.key_id])
    )
    assert (
        signatures[alice.user_id][device.key_id] == keys["signatures"][alice.user_id][device.key_id]
    )

    # A forged signature, and a signature on a key the server does not have, are failures.
    forged = CrossSigningKey(alice.user_id, "self_signing")
    forged.key_id = self_signing.key_id  # claims to be the real self-signing key
    bad = await alice.ok(
        "POST",
        f"{V3}/keys/signatures/upload",
        {
            alice.user_id: {
                alice.device_id: forged.sign(keys),
                "NOSUCH": self_signing.sign({**keys, "device_id": "NOSUCH"}),
            }
        },
    )
    assert set(bad["failures"][alice.user_id]) == {alice.device_id, "NOSUCH"}
    assert bad["failures"][alice.user_id]["NOSUCH"]["errcode"] == "M_NOT_FOUND"

    # Alice's device signs her master key (as Element does when bootstrapping): public.
    device_signed_master = sign_json(master.public_key(), alice.user_id, device.ed25519)
    result = await alice.ok(
        "POST",
        f"{V3}/keys/signatures/upload",
        {alice.user_id: {master.public: device_signed_master}},
    )
    assert result == {"failures": {}}
    view = await bob.ok("POST", f"{V3}/keys/query", {"device_keys": {alice.user_id: []}})
    master_sigs = view["master_keys"][alice.user_id]["signatures"][alice.user_id]
    assert (
        master_sigs[device.key_id]
        == (device_signed_master["signatures"][alice.user_id][device.key_id])
    )

    # Bob verifies Alice with his user-signing key: only Bob sees that signature.
    bob_master = CrossSigningKey(bob.user_id, "master")
    bob_user_signing = CrossSigningKey(bob.user_id, "user_signing")
    await bob.ok(
        "POST",
        f"{V3}/keys/device_signing/upload",
        {
            "master_key": bob_master.public_key(),
            "user_signing_key": bob_user_signing.public_key(signed_by=bob_master),
        },
    )
    alice_master = seen_by_bob["master_keys"][alice.user_id]
    verified = bob_user_signing.sign(alice_master)
    result = await bob.ok(
        "POST", f"{V3}/keys/signatures/upload", {alice.user_id: {master.public: verified}}
    )
    assert result == {"failures": {}}
    for viewer, visible in ((bob, True), (alice, False)):
        view = await viewer.ok("POST", f"{V3}/keys/query", {"device_keys": {alice.user_id: []}})
        sigs = view["master_keys"][alice.user_id].get("signatures", {})
        assert (bob_user_signing.key_id in sigs.get(bob.user_id, {})) is visible
    vclient.check(
        "POST /_matrix/client/v3/keys/device_signing/upload",
        "POST /_matrix/client/v3/keys/signatures/upload",
    )


async def test_key_backup_reports_no_backup(node: Node, vclient: ValidatingClient) -> None:
    alice = await vclient.register("alice")
    current = await alice.request("GET", f"{V3}/room_keys/version")
    assert current.status == 404 and current.body["errcode"] == "M_NOT_FOUND"
    some = await alice.request("GET", f"{V3}/room_keys/version/1")
    assert some.status == 404 and some.body["errcode"] == "M_NOT_FOUND"
    vclient.check("GET /_matrix/client/v3/room_keys/version")


# ----------------------------------------------------------------------------- real Olm


class OlmDevice:
    """A device with a real vodozemac Olm account."""

    def __init__(self, user: User) -> None:
        self.user = user
        self.account = vodozemac.Account()
        self.curve25519 = self.account.curve25519_key.to_base64()
        self.ed25519 = self.account.ed25519_key.to_base64()

    def sign(self, obj: dict[str, Any]) -> dict[str, Any]:
        signature = self.account.sign(signing_bytes(obj)).to_base64()
        key_id = f"ed25519:{self.user.device_id}"
        return {**obj, "signatures": {self.user.user_id: {key_id: signature}}}

    def device_keys(self) -> dict[str, Any]:
        device_id = self.user.device_id
        return self.sign(
            {
                "user_id": self.user.user_id,
                "device_id": device_id,
                "algorithms": [OLM, MEGOLM],
                "keys": {
                    f"curve25519:{device_id}": self.curve25519,
                    f"ed25519:{device_id}": self.ed25519,
                },
            }
        )

    def one_time_keys(self, count: int) -> dict[str, Any]:
        self.account.generate_one_time_keys(count)
        keys = {
            f"{SIGNED}:{kid}": self.sign({"key": key.to_base64()})
            for kid, key in self.account.one_time_keys.items()
        }
        self.account.mark_keys_as_published()
        return keys


async def test_real_olm_and_megolm_through_the_server(
    node: Node, vclient: ValidatingClient
) -> None:
    """Bob starts an Olm session with Alice's device from the keys the server gives him, sends
    her a Megolm room key by to-device, and she decrypts his encrypted room message."""
    alice = await vclient.register("alice")
    bob = await vclient.register("bob")
    room_id = await shared_room(alice, bob)
    alice_device = OlmDevice(alice)
    bob_device = OlmDevice(bob)
    await upload_keys(
        alice, device_keys=alice_device.device_keys(), one_time_keys=alice_device.one_time_keys(5)
    )
    await upload_keys(bob, device_keys=bob_device.device_keys())
    alice_since = (await alice.sync())["next_batch"]

    # Bob: fetch and check Alice's device keys, claim a one-time key and check it too.
    found = await bob.ok("POST", f"{V3}/keys/query", {"device_keys": {alice.user_id: []}})
    keys = found["device_keys"][alice.user_id][alice.device_id]
    ed25519 = keys["keys"][f"ed25519:{alice.device_id}"]
    curve25519 = keys["keys"][f"curve25519:{alice.device_id}"]
    verify_json(keys, alice.user_id, f"ed25519:{alice.device_id}", ed25519)
    claimed = await bob.ok(
        "POST", f"{V3}/keys/claim", {"one_time_keys": {alice.user_id: {alice.device_id: SIGNED}}}
    )
    ((_, one_time_key),) = claimed["one_time_keys"][alice.user_id][alice.device_id].items()
    verify_json(one_time_key, alice.user_id, f"ed25519:{alice.device_id}", ed25519)
    session = bob_device.account.create_outbound_session(
        vodozemac.Curve25519PublicKey.from_base64(curve25519),
        vodozemac.Curve25519PublicKey.from_base64(one_time_key["key"]),
    )

    # Bob: a Megolm session for the room; its key goes to Alice inside an Olm message.
    outbound = vodozemac.GroupSession()
    room_key = {
        "type": "m.room_key",
        "content": {
            "algorithm": MEGOLM,
            "room_id": room_id,
            "session_id": outbound.session_id,
            "session_key": outbound.session_key.to_base64(),
        },
        "sender": bob.user_id,
        "recipient": alice.user_id,
        "recipient_keys": {"ed25519": ed25519},
        "keys": {"ed25519": bob_device.ed25519},
    }
    message_type, ciphertext = session.encrypt(json.dumps(room_key).encode()).to_parts()
    await bob.ok(
        "PUT",
        f"{V3}/sendToDevice/m.room.encrypted/olm1",
        {
            "messages": {
                alice.user_id: {
                    alice.device_id: {
                        "algorithm": OLM,
                        "sender_key": bob_device.curve25519,
                        "ciphertext": {
                            curve25519: {"type": message_type, "body": encode_base64(ciphertext)}
                        },
                    }
                }
            }
        },
    )
    secret = "避難所は第二小学校です"
    megolm = outbound.encrypt(
        json.dumps(
            {
                "type": "m.room.message",
                "room_id": room_id,
                "content": {"msgtype": "m.text", "body": secret},
            }
        ).encode()
    )
    await bob.ok(
        "PUT",
        f"{V3}/rooms/{room_id}/send/m.room.encrypted/megolm1",
        {
            "algorithm": MEGOLM,
            "sender_key": bob_device.curve25519,
            "device_id": bob.device_id,
            "session_id": outbound.session_id,
            "ciphertext": megolm.to_base64(),
        },
    )

    # Alice: the Olm message arrives by to-device, the room message in the timeline.
    synced = await alice.sync(since=alice_since)
    (olm_event,) = synced["to_device"]["events"]
    assert olm_event["sender"] == bob.user_id and olm_event["type"] == "m.room.encrypted"
    body = olm_event["content"]["ciphertext"][alice_device.curve25519]
    assert body["type"] == 0  # a pre-key message: it used the claimed one-time key
    _, plaintext = alice_device.account.create_inbound_session(
        vodozemac.Curve25519PublicKey.from_base64(olm_event["content"]["sender_key"]),
        vodozemac.PreKeyMessage.from_base64(body["body"]),
    )
    received_key = json.loads(plaintext)
    assert received_key == room_key
    inbound = vodozemac.InboundGroupSession(
        vodozemac.SessionKey(received_key["content"]["session_key"])
    )
    (encrypted,) = [
        e
        for e in synced["rooms"]["join"][room_id]["timeline"]["events"]
        if e["type"] == "m.room.encrypted"
    ]
    decrypted = inbound.decrypt(
        vodozemac.MegolmMessage.from_base64(encrypted["content"]["ciphertext"])
    )
    assert json.loads(decrypted.plaintext)["content"]["body"] == secret
    # Alice's server-side count went down by the one key Bob claimed.
    assert synced["device_one_time_keys_count"] == {SIGNED: 4}
