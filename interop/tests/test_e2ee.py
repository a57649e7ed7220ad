"""End-to-end encryption data and media across servers: device list updates, remote key
queries and claims, to-device messages, and a user's upload downloaded from the other
server (authenticated media over federation)."""

from __future__ import annotations

import secrets
import ssl
import uuid
from typing import Any

import aiohttp

from interop.client import Client, JsonDict
from interop.tests.support import Cluster, Users, server_of, shared_room
from interop.wait import SyncWatcher

OLM = "m.olm.v1.curve25519-aes-sha2"
MEGOLM = "m.megolm.v1.aes-sha2"
SIGNED = "signed_curve25519"


def _key() -> str:
    return secrets.token_urlsafe(32)[:43]


async def upload_keys(client: Client) -> tuple[JsonDict, dict[str, JsonDict]]:
    """Device keys and two one-time keys for the client's device (servers store them as
    given; the signatures are placeholders, which only clients check)."""
    device_keys: JsonDict = {
        "user_id": client.user_id,
        "device_id": client.device_id,
        "algorithms": [OLM, MEGOLM],
        "keys": {f"curve25519:{client.device_id}": _key(), f"ed25519:{client.device_id}": _key()},
        "signatures": {client.user_id: {f"ed25519:{client.device_id}": _key()}},
    }
    one_time = {
        f"{SIGNED}:{uuid.uuid4().hex[:8]}": {
            "key": _key(),
            "signatures": {client.user_id: {f"ed25519:{client.device_id}": _key()}},
        }
        for _ in range(2)
    }
    await client.request(
        "POST", "/keys/upload", {"device_keys": device_keys, "one_time_keys": one_time}
    )
    return device_keys, one_time


def changed(response: JsonDict) -> set[str]:
    return set(response.get("device_lists", {}).get("changed", []))


def to_device_markers(response: JsonDict) -> list[tuple[str, Any]]:
    return [
        (e.get("sender"), e.get("content", {}).get("marker"))
        for e in response.get("to_device", {}).get("events", [])
        if e.get("type") == "org.example.interop"
    ]


async def test_device_keys_query_and_claim_across_servers(cluster: Cluster, users: Users) -> None:
    alice = await users.on(cluster.a, "alice")
    bob = await users.on(cluster.b, "bob")
    await shared_room(alice, [bob])
    for me, other in ((alice, bob), (bob, alice)):
        watcher = await SyncWatcher(other).start()
        device_keys, one_time = await upload_keys(me)
        await watcher.until(
            lambda r, me=me: me.user_id in changed(r),
            f"{me.user_id}'s key upload in {other.user_id}'s device_lists.changed",
        )
        seen = await other.request("POST", "/keys/query", {"device_keys": {me.user_id: []}})
        got = seen["device_keys"][me.user_id][me.device_id]
        assert {k: v for k, v in got.items() if k != "unsigned"} == device_keys
        assert not seen.get("failures")
        claimed = await other.request(
            "POST", "/keys/claim", {"one_time_keys": {me.user_id: {me.device_id: SIGNED}}}
        )
        assert not claimed.get("failures")
        (key_id, key), *rest = claimed["one_time_keys"][me.user_id][me.device_id].items()
        assert not rest and one_time[key_id] == key


async def test_to_device_messages_both_ways(cluster: Cluster, users: Users) -> None:
    alice = await users.on(cluster.a, "alice")
    bob = await users.on(cluster.b, "bob")
    await shared_room(alice, [bob])
    for me, other in ((alice, bob), (bob, alice)):
        watcher = await SyncWatcher(other).start()
        marker = f"from {server_of(me)} {uuid.uuid4().hex[:6]}"
        body = {"messages": {other.user_id: {other.device_id: {"marker": marker}}}}
        txn = uuid.uuid4().hex
        for _ in range(2):  # a retried request is delivered once
            await me.request("PUT", f"/sendToDevice/org.example.interop/{txn}", body)
        response = await watcher.until(
            lambda r, marker=marker: any(m == marker for _, m in to_device_markers(r)),
            f"{other.user_id} to receive {marker!r}",
        )
        assert to_device_markers(response) == [(me.user_id, marker)]


async def test_media_uploaded_on_a_downloads_from_b(cluster: Cluster, users: Users) -> None:
    alice = await users.on(cluster.a, "alice")
    bob = await users.on(cluster.b, "bob")
    data = "会議資料 ".encode() * 200 + secrets.token_bytes(64)
    context = ssl.create_default_context(cafile=str(cluster.harness.certs.ca))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as http:
        async with http.post(
            f"{alice.base_url}/_matrix/media/v3/upload",
            params={"filename": "資料.bin"},
            data=data,
            headers={
                "Authorization": f"Bearer {alice.access_token}",
                "Content-Type": "application/octet-stream",
            },
        ) as uploaded:
            assert uploaded.status == 200, await uploaded.text()
            uri = (await uploaded.json())["content_uri"]
        server, media_id = uri.removeprefix("mxc://").split("/")
        assert server == server_of(alice)
        async with http.get(
            f"{bob.base_url}/_matrix/client/v1/media/download/{server}/{media_id}",
            headers={"Authorization": f"Bearer {bob.access_token}"},
        ) as downloaded:
            assert downloaded.status == 200, await downloaded.text()
            assert await downloaded.read() == data
