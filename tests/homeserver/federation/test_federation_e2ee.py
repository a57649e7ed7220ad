"""End-to-end encryption across two Kairan nodes over HTTPS: device lists, key queries and
claims, to-device messages, and the federation key endpoints' answers to bad input."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from federation.client import RemoteError, federation_path
from federation.signing import sign_json
from homeserver.storage import remote_cache
from tests.homeserver.client import Client, User
from tests.homeserver.conftest import Node
from tests.homeserver.federation.test_federation import eventually
from tests.homeserver.keyhelpers import CrossSigningKey, Device, upload_keys

V3 = "/_matrix/client/v3"
SIGNED = "signed_curve25519"
_txn = itertools.count()


async def login(client: Client, user: User) -> User:
    body = {
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": user.user_id},
        "password": "correct horse",
        "initial_device_display_name": "二台目",
    }
    result = await client.ok("POST", f"{V3}/login", body)
    return User(client, result["user_id"], result["access_token"], result["device_id"])


async def shared_room(host: User, guest: User) -> str:
    """A room of ``host`` that ``guest`` (on the other server) has joined, seen by both."""
    room_id = await host.create_room(preset="private_chat")
    await host.invite(room_id, guest.user_id)
    await eventually(lambda: _invited(guest, room_id))
    await guest.ok("POST", f"{V3}/join/{room_id}", {})

    async def joined() -> bool:
        members = await host.ok("GET", f"{V3}/rooms/{room_id}/joined_members")
        return guest.user_id in members["joined"]

    await eventually(joined)
    return room_id


async def _invited(user: User, room_id: str) -> bool:
    return room_id in (await user.sync())["rooms"].get("invite", {})


class Watcher:
    """Incremental /sync of one device, collecting device list changes and to-device events."""

    def __init__(self, user: User) -> None:
        self.user = user
        self.since: str | None = None
        self.changed: set[str] = set()
        self.to_device: list[dict[str, Any]] = []

    async def start(self) -> Watcher:
        self.since = (await self.user.sync())["next_batch"]
        self.to_device.clear()
        return self

    async def poll(self) -> None:
        synced = await self.user.sync(self.since)
        self.since = synced["next_batch"]
        self.changed |= set(synced.get("device_lists", {}).get("changed", []))
        self.to_device += synced.get("to_device", {}).get("events", [])

    async def until_changed(self, user_id: str) -> None:
        self.changed.clear()

        async def seen() -> bool:
            await self.poll()
            return user_id in self.changed

        await eventually(seen)

    async def until_to_device(self, marker: str) -> list[dict[str, Any]]:
        async def seen() -> bool:
            await self.poll()
            return any(e["content"].get("marker") == marker for e in self.to_device)

        await eventually(seen)
        return self.to_device


async def query(user: User, target: str) -> dict[str, Any]:
    result: dict[str, Any] = await user.ok(
        "POST", f"{V3}/keys/query", {"device_keys": {target: []}}
    )
    return result


async def assert_applied_in_order(home: Node, other: Node, user_id: str) -> None:
    """The last update of the user's device list cached by ``other`` followed the one before
    it (a fetch of the whole list leaves ``prev_id`` None), and it is the user's latest
    change on ``home``."""
    async with other.services.db.read() as conn:
        cached = await remote_cache.get_device_list(conn, user_id)
    assert cached is not None
    assert cached.data["prev_id"] is not None and cached.data["prev_id"][0] < cached.stream_id
    latest = await home.services.federation.handler.on_user_devices(other.server_name, user_id)
    assert cached.stream_id == latest["stream_id"]


async def test_device_lists_and_keys_reach_the_other_server(pair: tuple[Node, Node]) -> None:
    a, b = pair
    async with a.client() as ca, b.client() as cb:
        alice = await ca.register("alice")
        bob = await cb.register("bob")
        await shared_room(alice, bob)
        bob_sync = await Watcher(bob).start()

        # Alice's keys: bob's server learns of them, and bob's sync says so.
        master = CrossSigningKey(alice.user_id, "master")
        self_signing = CrossSigningKey(alice.user_id, "self_signing")
        cross = {
            "master_key": master.public_key(),
            "self_signing_key": self_signing.public_key(signed_by=master),
            "user_signing_key": CrossSigningKey(alice.user_id, "user_signing").public_key(
                signed_by=master
            ),
        }
        await alice.ok("POST", f"{V3}/keys/device_signing/upload", cross)
        device = Device(alice)
        keys = device.device_keys()
        one_time = device.one_time_keys(2)
        await upload_keys(alice, device_keys=keys, one_time_keys=one_time)
        await bob_sync.until_changed(alice.user_id)

        async def cached_with_master() -> bool:
            async with b.services.db.read() as conn:
                cached = await remote_cache.get_device_list(conn, alice.user_id)
            return (
                cached is not None
                and alice.device_id in cached.data["devices"]
                and "master_key" in cached.data
            )

        # The first update B sees for alice makes it fetch her whole device list.
        await eventually(cached_with_master)

        seen = await query(bob, alice.user_id)
        assert seen["failures"] == {}
        got = seen["device_keys"][alice.user_id][alice.device_id]
        assert {k: v for k, v in got.items() if k != "unsigned"} == keys
        assert seen["master_keys"][alice.user_id] == cross["master_key"]
        assert seen["self_signing_keys"][alice.user_id] == cross["self_signing_key"]
        assert alice.user_id not in seen.get("user_signing_keys", {})

        # Claims go to alice's server: each claim takes a different one-time key.
        claim = {"one_time_keys": {alice.user_id: {alice.device_id: SIGNED}}}
        first = await bob.ok("POST", f"{V3}/keys/claim", claim)
        second = await bob.ok("POST", f"{V3}/keys/claim", claim)
        assert first["failures"] == {} and second["failures"] == {}
        (kid1,) = first["one_time_keys"][alice.user_id][alice.device_id]
        (kid2,) = second["one_time_keys"][alice.user_id][alice.device_id]
        assert {kid1, kid2} == set(one_time)
        assert first["one_time_keys"][alice.user_id][alice.device_id][kid1] == one_time[kid1]
        counts = (await alice.sync())["device_one_time_keys_count"]
        assert counts[SIGNED] == 0

        # A rename travels as an update that follows the cached stream (no resync needed),
        # but the name itself stays on alice's server.
        await alice.ok("PUT", f"{V3}/devices/{alice.device_id}", {"display_name": "田中の端末"})
        latest = await a.services.federation.handler.on_user_devices(b.server_name, alice.user_id)

        async def rename_applied() -> bool:
            async with b.services.db.read() as conn:
                cached = await remote_cache.get_device_list(conn, alice.user_id)
            return cached is not None and cached.stream_id == latest["stream_id"]

        await eventually(rename_applied)
        await assert_applied_in_order(a, b, alice.user_id)
        found = await query(bob, alice.user_id)
        assert found["device_keys"][alice.user_id][alice.device_id]["unsigned"] == {}
        assert "田中" not in str(latest)
        own = await query(alice, alice.user_id)
        assert own["device_keys"][alice.user_id][alice.device_id]["unsigned"] == {
            "device_display_name": "田中の端末"
        }

        # A second device, then the first one deleted: bob sees only the second.
        second_login = await login(ca, alice)
        second_device = Device(second_login)
        await upload_keys(second_login, device_keys=second_device.device_keys())
        delete_body = {
            "auth": {
                "type": "m.login.password",
                "identifier": {"type": "m.id.user", "user": alice.user_id},
                "password": "correct horse",
            }
        }
        await second_login.ok("DELETE", f"{V3}/devices/{alice.device_id}", delete_body)
        await bob_sync.until_changed(alice.user_id)

        async def only_second() -> bool:
            found = await query(bob, alice.user_id)
            return set(found["device_keys"][alice.user_id]) == {second_login.device_id}

        await eventually(only_second)
        await assert_applied_in_order(a, b, alice.user_id)

        # Logging out removes the device too.
        await second_login.ok("POST", f"{V3}/logout", {})

        async def none_left() -> bool:
            found = await query(bob, alice.user_id)
            return found["device_keys"][alice.user_id] == {}

        await eventually(none_left)
        await assert_applied_in_order(a, b, alice.user_id)


async def test_cross_signing_signatures_reach_the_other_server(pair: tuple[Node, Node]) -> None:
    """A signature on alice's master key by her device (as after verifying a new session)
    goes to B as m.signing_key_update and updates B's copy of the key."""
    a, b = pair
    async with a.client() as ca, b.client() as cb:
        alice = await ca.register("alice")
        bob = await cb.register("bob")
        await shared_room(alice, bob)
        master = CrossSigningKey(alice.user_id, "master")
        self_signing = CrossSigningKey(alice.user_id, "self_signing")
        cross = {
            "master_key": master.public_key(),
            "self_signing_key": self_signing.public_key(signed_by=master),
        }
        await alice.ok("POST", f"{V3}/keys/device_signing/upload", cross)
        device = Device(alice)
        await upload_keys(alice, device_keys=device.device_keys())

        async def cached_master() -> dict[str, Any] | None:
            async with b.services.db.read() as conn:
                cached = await remote_cache.get_device_list(conn, alice.user_id)
            return cached.data.get("master_key") if cached is not None else None

        assert await eventually(cached_master) == cross["master_key"]
        signed = sign_json(cross["master_key"], alice.user_id, device.ed25519)
        answer = await alice.ok(
            "POST", f"{V3}/keys/signatures/upload", {alice.user_id: {master.public: signed}}
        )
        assert answer == {"failures": {}}

        async def signed_on_b() -> bool:
            key = await cached_master()
            signatures = (key or {}).get("signatures", {}).get(alice.user_id, {})
            return device.key_id in signatures

        await eventually(signed_on_b)
        seen = await query(bob, alice.user_id)
        assert seen["master_keys"][alice.user_id]["signatures"] == signed["signatures"]


async def test_cached_device_list_is_dropped_when_no_room_is_shared(
    pair: tuple[Node, Node],
) -> None:
    a, b = pair
    async with a.client() as ca, b.client() as cb:
        alice = await ca.register("alice")
        bob = await cb.register("bob")
        room_id = await shared_room(alice, bob)
        keys = Device(alice).device_keys()
        await upload_keys(alice, device_keys=keys)

        async def cached() -> bool:
            async with b.services.db.read() as conn:
                return await remote_cache.get_device_list(conn, alice.user_id) is not None

        await eventually(cached)
        # Bob leaves: B no longer hears of alice's devices, so it forgets what it knew...
        await bob.ok("POST", f"{V3}/rooms/{room_id}/leave", {})
        await eventually(lambda: _not(cached))
        # ... and asks alice's server instead.
        seen = await query(bob, alice.user_id)
        assert seen["device_keys"][alice.user_id][alice.device_id]["keys"] == keys["keys"]


async def _not(check: Any) -> bool:
    return not await check()


async def test_remote_query_without_a_shared_room_and_unreachable_servers(
    pair: tuple[Node, Node],
) -> None:
    a, b = pair
    async with a.client() as ca, b.client() as cb:
        alice = await ca.register("alice")
        bob = await cb.register("bob")
        keys = Device(alice).device_keys()
        await upload_keys(alice, device_keys=keys)
        await alice.ok("PUT", f"{V3}/devices/{alice.device_id}", {"display_name": "田中の端末"})
        # No shared room: nothing is cached, the query goes to alice's server.
        seen = await bob.ok(
            "POST",
            f"{V3}/keys/query",
            {"device_keys": {alice.user_id: [], "@nobody:127.0.0.1:1": []}},
        )
        assert seen["device_keys"][alice.user_id][alice.device_id]["keys"] == keys["keys"]
        assert seen["device_keys"][alice.user_id][alice.device_id]["unsigned"] == {}
        # Only the server that cannot be reached is a failure.
        assert set(seen["failures"]) == {"127.0.0.1:1"}
        assert seen["failures"]["127.0.0.1:1"]["status"] == 503
        claimed = await bob.ok(
            "POST",
            f"{V3}/keys/claim",
            {"one_time_keys": {"@nobody:127.0.0.1:1": {"DEV": SIGNED}}},
        )
        assert claimed["one_time_keys"] == {} and set(claimed["failures"]) == {"127.0.0.1:1"}


async def send_to_device(
    user: User, messages: dict[str, dict[str, Any]], txn: str | None = None
) -> None:
    txn = txn or f"t{next(_txn)}"
    await user.ok("PUT", f"{V3}/sendToDevice/m.test/{txn}", {"messages": messages})


async def test_to_device_messages_cross_servers_exactly_once(pair: tuple[Node, Node]) -> None:
    a, b = pair
    async with a.client() as ca, b.client() as cb:
        alice = await ca.register("alice")
        bob = await cb.register("bob")
        bob2 = await login(cb, bob)
        await shared_room(alice, bob)
        bob_sync = await Watcher(bob).start()
        bob2_sync = await Watcher(bob2).start()
        alice_sync = await Watcher(alice).start()

        # The same transaction twice (a client retry) is delivered once.
        message = {bob.user_id: {bob.device_id: {"marker": "one", "本文": "こんにちは"}}}
        await send_to_device(alice, message, "retry-me")
        await send_to_device(alice, message, "retry-me")
        await send_to_device(alice, {bob.user_id: {"*": {"marker": "all"}}})
        events = await bob_sync.until_to_device("all")
        assert [e["content"]["marker"] for e in events] == ["one", "all"]
        assert events[0] == {
            "sender": alice.user_id,
            "type": "m.test",
            "content": {"marker": "one", "本文": "こんにちは"},
        }
        # "*" reaches every device of bob; the first message only the one addressed.
        events2 = await bob2_sync.until_to_device("all")
        assert [e["content"]["marker"] for e in events2] == ["all"]
        # Nothing more turns up later: send a last marker and compare.
        await send_to_device(alice, {bob.user_id: {bob.device_id: {"marker": "last"}}})
        events = await bob_sync.until_to_device("last")
        assert [e["content"]["marker"] for e in events] == ["one", "all", "last"]

        # And back.
        await send_to_device(bob, {alice.user_id: {alice.device_id: {"marker": "reply"}}})
        replies = await alice_sync.until_to_device("reply")
        assert [(e["sender"], e["content"]["marker"]) for e in replies] == [(bob.user_id, "reply")]


async def test_spoofed_and_malformed_edus_are_ignored(pair: tuple[Node, Node]) -> None:
    a, b = pair
    async with a.client() as ca, b.client() as cb:
        alice = await ca.register("alice")
        bob = await cb.register("bob")
        await shared_room(alice, bob)
        bob_sync = await Watcher(bob).start()
        client = a.services.federation.client

        def to_device(sender: str, marker: str, message_id: Any) -> dict[str, Any]:
            return {
                "edu_type": "m.direct_to_device",
                "content": {
                    "sender": sender,
                    "type": "m.test",
                    "message_id": message_id,
                    "messages": {bob.user_id: {bob.device_id: {"marker": marker}}},
                },
            }

        edus: list[Any] = [
            # A server may only speak for its own users.
            to_device(f"@mallory:{b.server_name}", "spoofed", "m1"),
            # Malformed EDUs of every kind.
            {"edu_type": "m.direct_to_device", "content": {"sender": alice.user_id}},
            to_device(alice.user_id, "bad message ID", 5),
            {"edu_type": "m.device_list_update", "content": {"user_id": bob.user_id}},
            {
                "edu_type": "m.device_list_update",
                "content": {
                    "user_id": alice.user_id,
                    "device_id": "X",
                    "stream_id": "not a number",
                    "prev_id": ["x"],
                },
            },
            {"edu_type": "m.signing_key_update", "content": {"user_id": bob.user_id}},
            {"edu_type": "m.signing_key_update", "content": {"master_key": []}},
            # Then a good one, twice with the same message ID: delivered once.
            to_device(alice.user_id, "good", "m2"),
            to_device(alice.user_id, "good", "m2"),
        ]
        body = {"origin": a.server_name, "origin_server_ts": 0, "pdus": [], "edus": edus}
        answer = await client.request(
            b.server_name, "PUT", federation_path("v1", "send", "spoof-1"), body=body
        )
        assert answer == {"pdus": {}}
        events = await bob_sync.until_to_device("good")
        assert [(e["sender"], e["content"]["marker"]) for e in events] == [(alice.user_id, "good")]


async def test_federation_key_endpoints_refuse_bad_input(pair: tuple[Node, Node]) -> None:
    a, b = pair
    async with a.client() as ca, b.client() as cb:
        alice = await ca.register("alice")
        bob = await cb.register("bob")
        device = Device(bob)
        keys = device.device_keys()
        await upload_keys(bob, device_keys=keys, one_time_keys=device.one_time_keys(1))
        client = a.services.federation.client

        async def refused(method: str, path: str, body: Any = None) -> RemoteError:
            with pytest.raises(RemoteError) as caught:
                await client.request(b.server_name, method, path, body=body)
            assert 400 <= caught.value.status < 500, caught.value
            assert caught.value.errcode and caught.value.errcode.startswith("M_")
            return caught.value

        query_path = federation_path("v1", "user/keys/query")
        claim_path = federation_path("v1", "user/keys/claim")
        # Users of other servers (here: of the asking server itself) are not answered.
        error = await refused("GET", federation_path("v1", "user/devices", alice.user_id))
        assert error.errcode == "M_INVALID_PARAM"
        await refused("GET", federation_path("v1", "user/devices", "not a user"))
        error = await refused("POST", query_path, {"device_keys": {alice.user_id: []}})
        assert error.errcode == "M_INVALID_PARAM"
        await refused("POST", claim_path, {"one_time_keys": {alice.user_id: {"D": SIGNED}}})
        for bad in (
            {},
            {"device_keys": "everyone"},
            {"device_keys": {bob.user_id: "all"}},
            {"device_keys": {bob.user_id: [1, 2]}},
            {"device_keys": {"not a user": []}},
            {"device_keys": {f"@u{i}:{b.server_name}": [] for i in range(1001)}},
            {"device_keys": {bob.user_id: [f"D{i}" for i in range(10_001)]}},
        ):
            error = await refused("POST", query_path, bad)
        for bad in (
            {"one_time_keys": []},
            {"one_time_keys": {bob.user_id: []}},
            {"one_time_keys": {bob.user_id: {bob.device_id: 7}}},
        ):
            await refused("POST", claim_path, bad)

        # Good requests are answered for the server's own users.
        devices = await client.request(
            b.server_name, "GET", federation_path("v1", "user/devices", bob.user_id)
        )
        assert devices["user_id"] == bob.user_id and devices["stream_id"] > 0
        assert [d["device_id"] for d in devices["devices"]] == [bob.device_id]
        assert devices["devices"][0]["keys"] == keys
        keys = await client.request(
            b.server_name, "POST", query_path, body={"device_keys": {bob.user_id: []}}
        )
        assert set(keys["device_keys"][bob.user_id]) == {bob.device_id}
        claimed = await client.request(
            b.server_name,
            "POST",
            claim_path,
            body={"one_time_keys": {bob.user_id: {bob.device_id: SIGNED}}},
        )
        assert len(claimed["one_time_keys"][bob.user_id][bob.device_id]) == 1
