"""Server-side key backup (/room_keys) over real HTTP, checked against the spec's OpenAPI:
versions, keys at the three path depths, the spec's rule for which key to keep, and errors."""

from __future__ import annotations

from typing import Any

from tests.homeserver.conftest import Node
from tests.homeserver.keyhelpers import (
    V3,
)
from tests.homeserver.openapi import ValidatingClient

RK = f"{V3}/room_keys"
ALGORITHM = "m.megolm_backup.v1.curve25519-aes-sha2"
AUTH = {"public_key": "abcdefg", "signatures": {}}


def key(first: int, forwarded: int = 0, verified: bool = False, tag: str = "a") -> dict[str, Any]:
    return {
        "first_message_index": first,
        "forwarded_count": forwarded,
        "is_verified": verified,
        "session_data": {"ephemeral": tag, "ciphertext": tag, "mac": tag},
    }


async def test_backup_versions(node: Node, vclient: ValidatingClient) -> None:
    alice = await vclient.register("alice")
    none = await alice.request("GET", f"{RK}/version")
    assert none.status == 404 and none.body["errcode"] == "M_NOT_FOUND"
    created = await alice.ok("POST", f"{RK}/version", {"algorithm": ALGORITHM, "auth_data": AUTH})
    assert created == {"version": "1"}
    current = await alice.ok("GET", f"{RK}/version")
    assert current == {
        "algorithm": ALGORITHM,
        "auth_data": AUTH,
        "count": 0,
        "etag": "0",
        "version": "1",
    }
    assert await alice.ok("GET", f"{RK}/version/1") == current
    new_auth = {"public_key": "hijklmn"}
    await alice.ok(
        "PUT", f"{RK}/version/1", {"algorithm": ALGORITHM, "auth_data": new_auth, "version": "1"}
    )
    assert (await alice.ok("GET", f"{RK}/version"))["auth_data"] == new_auth
    second = await alice.ok("POST", f"{RK}/version", {"algorithm": ALGORITHM, "auth_data": AUTH})
    assert second == {"version": "2"}
    assert (await alice.ok("GET", f"{RK}/version"))["version"] == "2"
    await alice.ok("DELETE", f"{RK}/version/2")
    assert (await alice.ok("GET", f"{RK}/version"))["version"] == "1"
    # A deleted version's number is not reused.
    third = await alice.ok("POST", f"{RK}/version", {"algorithm": ALGORITHM, "auth_data": AUTH})
    assert third == {"version": "3"}
    # Backups are per user.
    bob = await vclient.register("bob")
    assert (await bob.request("GET", f"{RK}/version")).status == 404
    assert (await bob.request("GET", f"{RK}/version/1")).status == 404

    for method, path, body, status, errcode in [
        ("POST", "/version", {"algorithm": "m.other", "auth_data": {}}, 400, "M_INVALID_PARAM"),
        ("POST", "/version", {"algorithm": ALGORITHM}, 400, "M_MISSING_PARAM"),
        ("POST", "/version", {"algorithm": ALGORITHM, "auth_data": "x"}, 400, "M_BAD_JSON"),
        ("PUT", "/version/1", {"algorithm": ALGORITHM, "auth_data": {}, "version": "9"}, 400,
         "M_INVALID_PARAM"),
        ("PUT", "/version/99", {"algorithm": ALGORITHM, "auth_data": {}}, 404, "M_NOT_FOUND"),
        ("GET", "/version/abc", None, 404, "M_NOT_FOUND"),
        ("DELETE", "/version/2", None, 404, "M_NOT_FOUND"),
    ]:  # fmt: skip
        response = await alice.request(method, RK + path, body)
        assert (response.status, response.body["errcode"]) == (status, errcode), (method, path)
    vclient.check(
        "POST /_matrix/client/v3/room_keys/version",
        "GET /_matrix/client/v3/room_keys/version",
        "GET /_matrix/client/v3/room_keys/version/{version}",
        "PUT /_matrix/client/v3/room_keys/version/{version}",
        "DELETE /_matrix/client/v3/room_keys/version/{version}",
    )


async def test_backup_keys(node: Node, vclient: ValidatingClient) -> None:
    alice = await vclient.register("alice")
    await alice.ok("POST", f"{RK}/version", {"algorithm": ALGORITHM, "auth_data": AUTH})
    v = {"version": "1"}
    room = "!room:example.org"
    put_all = await alice.ok(
        "PUT",
        f"{RK}/keys",
        {"rooms": {room: {"sessions": {"s1": key(5), "s2": key(0)}}}},
        params=v,
    )
    assert put_all == {"etag": "1", "count": 2}
    await alice.ok("PUT", f"{RK}/keys/{room}", {"sessions": {"s3": key(1)}}, params=v)
    await alice.ok("PUT", f"{RK}/keys/{room}/s4", key(2), params=v)
    everything = await alice.ok("GET", f"{RK}/keys", params=v)
    assert sorted(everything["rooms"][room]["sessions"]) == ["s1", "s2", "s3", "s4"]
    assert await alice.ok("GET", f"{RK}/keys/{room}/s1", params=v) == key(5)
    assert await alice.ok("GET", f"{RK}/keys/!empty:example.org", params=v) == {"sessions": {}}
    assert (await alice.ok("GET", f"{RK}/version"))["count"] == 4

    # Which key is kept: verified first, then the lower first index, then fewer forwards.
    path = f"{RK}/keys/{room}/s1"
    await alice.ok("PUT", path, key(9, tag="worse"), params=v)
    assert (await alice.ok("GET", path, params=v))["session_data"]["ciphertext"] == "a"
    await alice.ok("PUT", path, key(3, tag="lower"), params=v)
    assert (await alice.ok("GET", path, params=v))["first_message_index"] == 3
    await alice.ok("PUT", path, key(3, forwarded=0, tag="same"), params=v)
    assert (await alice.ok("GET", path, params=v))["session_data"]["ciphertext"] == "lower"
    await alice.ok("PUT", path, key(7, verified=True, tag="verified"), params=v)
    assert (await alice.ok("GET", path, params=v))["is_verified"] is True
    await alice.ok("PUT", path, key(0, verified=False, tag="unverified"), params=v)
    assert (await alice.ok("GET", path, params=v))["session_data"]["ciphertext"] == "verified"

    # Deleting at each depth.
    assert (await alice.ok("DELETE", f"{RK}/keys/{room}/s4", params=v))["count"] == 3
    missing = await alice.request("GET", f"{RK}/keys/{room}/s4", params=v)
    assert missing.status == 404 and missing.body["errcode"] == "M_NOT_FOUND"
    assert (await alice.ok("DELETE", f"{RK}/keys/{room}", params=v))["count"] == 0
    await alice.ok("PUT", f"{RK}/keys/{room}/s9", key(0), params=v)
    assert (await alice.ok("DELETE", f"{RK}/keys", params=v))["count"] == 0

    # Uploads go to the current version only.
    await alice.ok("POST", f"{RK}/version", {"algorithm": ALGORITHM, "auth_data": AUTH})
    stale = await alice.request("PUT", f"{RK}/keys/{room}/s1", key(0), params=v)
    assert stale.status == 403 and stale.body["errcode"] == "M_WRONG_ROOM_KEYS_VERSION"
    assert stale.body["current_version"] == "2"
    vclient.check(
        "PUT /_matrix/client/v3/room_keys/keys",
        "GET /_matrix/client/v3/room_keys/keys",
        "DELETE /_matrix/client/v3/room_keys/keys",
        "PUT /_matrix/client/v3/room_keys/keys/{roomId}",
        "GET /_matrix/client/v3/room_keys/keys/{roomId}",
        "DELETE /_matrix/client/v3/room_keys/keys/{roomId}",
        "PUT /_matrix/client/v3/room_keys/keys/{roomId}/{sessionId}",
        "GET /_matrix/client/v3/room_keys/keys/{roomId}/{sessionId}",
        "DELETE /_matrix/client/v3/room_keys/keys/{roomId}/{sessionId}",
    )


async def test_bad_backup_requests(node: Node, vclient: ValidatingClient) -> None:
    alice = await vclient.register("alice")
    room = "!room:example.org"
    nothing = await alice.request("PUT", f"{RK}/keys/{room}/s", key(0), params={"version": "1"})
    assert nothing.status == 404 and nothing.body["errcode"] == "M_NOT_FOUND"
    await alice.ok("POST", f"{RK}/version", {"algorithm": ALGORITHM, "auth_data": AUTH})
    v = {"version": "1"}
    for path, body, params, errcode in [
        (f"{RK}/keys/{room}/s", key(0), None, "M_MISSING_PARAM"),
        (f"{RK}/keys/{room}/s", {**key(0), "first_message_index": -1}, v, "M_BAD_JSON"),
        (f"{RK}/keys/{room}/s", {**key(0), "is_verified": "yes"}, v, "M_BAD_JSON"),
        (f"{RK}/keys/{room}/s", {**key(0), "session_data": "x"}, v, "M_BAD_JSON"),
        (f"{RK}/keys/{room}/s", {**key(0), "forwarded_count": True}, v, "M_BAD_JSON"),
        (f"{RK}/keys/{room}", {"sessions": []}, v, "M_BAD_JSON"),
        (f"{RK}/keys", {"rooms": {room: []}}, v, "M_BAD_JSON"),
        (f"{RK}/keys", {}, v, "M_BAD_JSON"),
    ]:
        response = await alice.request("PUT", path, body, params=params)
        assert (response.status, response.body["errcode"]) == (400, errcode), (path, body)
    unknown = await alice.request("GET", f"{RK}/keys", params={"version": "7"})
    assert unknown.status == 404 and unknown.body["errcode"] == "M_NOT_FOUND"
    assert (await alice.ok("GET", f"{RK}/version"))["count"] == 0
    assert not vclient.mismatches, vclient.mismatches
