"""Extended profile fields (Matrix 1.16, MSC4133) over HTTP on both databases: any
namespaced key, the key and size limits, DELETE, the m.profile_fields capability."""

from __future__ import annotations

from urllib.parse import quote

from tests.homeserver.client import Client
from tests.homeserver.conftest import Node

V3 = "/_matrix/client/v3"


async def test_custom_fields_set_read_and_delete(node: Node, client: Client) -> None:
    alice = await client.register("alice")
    me = f"{V3}/profile/{quote(alice.user_id)}"
    await alice.ok("PUT", me + "/displayname", {"displayname": "有栖"})
    await alice.ok("PUT", me + "/m.tz", {"m.tz": "Asia/Tokyo"})
    await alice.ok("PUT", me + "/org.example.job", {"org.example.job": {"title": "主任"}})
    assert await alice.ok("GET", me + "/org.example.job") == {"org.example.job": {"title": "主任"}}
    assert await client.ok("GET", me) == {
        "displayname": "有栖", "m.tz": "Asia/Tokyo", "org.example.job": {"title": "主任"},
    }  # fmt: skip
    await alice.ok("DELETE", me + "/org.example.job")
    gone = await alice.request("GET", me + "/org.example.job")
    assert (gone.status, gone.body["errcode"]) == (404, "M_NOT_FOUND")
    await alice.ok("DELETE", me + "/org.example.job")  # deleting nothing is fine
    await alice.ok("DELETE", me + "/displayname")
    assert await client.ok("GET", me) == {"m.tz": "Asia/Tokyo"}
    caps = await alice.ok("GET", f"{V3}/capabilities")
    assert caps["capabilities"]["m.profile_fields"] == {"enabled": True}


async def test_keys_values_and_sizes_are_checked(node: Node, client: Client) -> None:
    alice = await client.register("alice")
    bob = await client.register("bob")
    me = f"{V3}/profile/{quote(alice.user_id)}"

    async def put(key: str, body: object) -> tuple[int, str]:
        response = await alice.request("PUT", f"{me}/{quote(key)}", body)
        return response.status, (response.body or {}).get("errcode", "")

    assert await put("Bad-Key", {"Bad-Key": 1}) == (400, "M_INVALID_PARAM")
    assert await put("nodots", {"nodots": 1}) == (400, "M_INVALID_PARAM")
    long_key = "org." + "a" * 252
    assert await put(long_key, {long_key: 1}) == (400, "M_KEY_TOO_LARGE")
    assert await put("org.example.x", {"other": 1}) == (400, "M_MISSING_PARAM")
    assert await put("m.tz", {"m.tz": 9}) == (400, "M_BAD_JSON")
    assert await put("org.example.x", {"org.example.x": None}) == (400, "M_BAD_JSON")
    # 64 KiB for the whole profile: two fields of 40 KB do not fit.
    assert await put("org.example.a", {"org.example.a": "x" * 40_000}) == (200, "")
    assert await put("org.example.b", {"org.example.b": "y" * 40_000}) == (
        400, "M_PROFILE_TOO_LARGE",
    )  # fmt: skip
    assert await put("org.example.a", {"org.example.a": "z" * 60_000}) == (200, "")
    others = await bob.request("PUT", f"{me}/org.example.x", {"org.example.x": 1})
    assert (others.status, others.body["errcode"]) == (403, "M_FORBIDDEN")
    deleted = await bob.request("DELETE", f"{me}/org.example.a")
    assert (deleted.status, deleted.body["errcode"]) == (403, "M_FORBIDDEN")
    bad_delete = await alice.request("DELETE", f"{me}/Bad-Key")
    assert (bad_delete.status, bad_delete.body["errcode"]) == (400, "M_INVALID_PARAM")
    anonymous = await client.request("PUT", f"{me}/org.example.x", {"org.example.x": 1})
    assert anonymous.status == 401
    profile = await client.ok("GET", me)
    assert (
        set(profile) == {"displayname", "org.example.a"} and len(profile["org.example.a"]) == 60_000
    )
