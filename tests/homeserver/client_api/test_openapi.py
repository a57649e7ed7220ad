"""Real flows over HTTP through :class:`ValidatingClient`: each test asserts the responses'
statuses, errcodes and fields itself; in the conformance run (``make conformance``) every
response body is also validated against the schema the spec gives for (method, path,
status), and each test asserts that nothing mismatched and that the operations it is about
were really reached.
"""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from PIL import Image

from federation.signing import encode_base64, generate_signing_key, sign_json
from homeserver.client_api.discovery import SPEC_VERSIONS
from tests.homeserver.client import User
from tests.homeserver.conftest import Node
from tests.homeserver.openapi import (
    ClientServerSpec,
    SchemaMismatch,
    SpecNotFound,
    ValidatingClient,
    spec_root,
)

V3 = "/_matrix/client/v3"


def room_path(room_id: str, rest: str = "") -> str:
    return f"{V3}/rooms/{quote(room_id, safe='')}{rest}"


# ----------------------------------------------------------------------------- discovery


@pytest.mark.conformance
async def test_spec_loader_resolves_and_rejects(spec: ClientServerSpec) -> None:
    op = spec.find("GET", "/_matrix/client/v3/rooms/!r:x/state/m.room.name")
    assert op.template == "/_matrix/client/v3/rooms/{roomId}/state/{eventType}/{stateKey}"
    assert spec.find("GET", "/_matrix/client/v3/rooms/!r:x/state").template.endswith("/state")
    # A sync body with a timeline event lacking required fields must be refused: proves the
    # cross-file refs (sync.yaml -> client_event -> event-schemas) are followed.
    with pytest.raises(SchemaMismatch, match="event_id"):
        spec.validate(
            "GET",
            f"{V3}/sync",
            200,
            {
                "next_batch": "s1",
                "rooms": {"join": {"!a": {"timeline": {"events": [{"type": "m.x"}]}}}},
            },
        )
    with pytest.raises(SchemaMismatch, match="user_id"):
        spec.validate("GET", f"{V3}/account/whoami", 200, {"user_id": "not-a-user-id"})
    with pytest.raises(SchemaMismatch, match="errcode"):
        spec.validate("GET", f"{V3}/account/whoami", 401, {"error": "no errcode"})
    with pytest.raises(KeyError):
        spec.find("GET", "/_matrix/client/v3/no/such/endpoint")


async def test_spec_root_fails_clearly_without_a_spec(tmp_path: Path) -> None:
    with pytest.raises(SpecNotFound, match=r"^Matrix spec not found \(\$KAIRAN_MATRIX_SPEC="):
        spec_root(str(tmp_path / "nowhere"), "$KAIRAN_MATRIX_SPEC")
    (tmp_path / "data" / "api").mkdir(parents=True)  # a checkout without the CS API
    with pytest.raises(SpecNotFound, match="--matrix-spec") as raised:
        spec_root(str(tmp_path), "--matrix-spec")
    assert "\n" not in str(raised.value)
    (tmp_path / "data" / "api" / "client-server").mkdir()
    assert spec_root(str(tmp_path), "--matrix-spec") == tmp_path.resolve()


async def test_discovery_accounts_and_profiles(node: Node, vclient: ValidatingClient) -> None:
    c = vclient
    versions = await c.ok("GET", "/_matrix/client/versions")
    assert versions["versions"] == SPEC_VERSIONS  # what is all routed (test_endpoint_coverage)
    well_known = await c.ok("GET", "/.well-known/matrix/client")
    assert well_known["m.homeserver"]["base_url"].startswith("http")

    # Registration: UIA first (401 with flows), then with the dummy stage.
    start = await c.request("POST", f"{V3}/register", {"username": "alice", "password": "pw"})
    assert start.status == 401 and {"flows", "session"} <= set(start.body)
    assert (
        await c.request("GET", f"{V3}/register/available", params={"username": "alice"})
    ).status == 200
    alice = await c.register("alice")
    taken = await c.request("GET", f"{V3}/register/available", params={"username": "alice"})
    assert taken.status == 400 and taken.body["errcode"] == "M_USER_IN_USE"
    again = await c.request(
        "POST",
        f"{V3}/register",
        {"username": "alice", "password": "pw", "auth": {"type": "m.login.dummy"}},
    )
    assert again.status == 400 and again.body["errcode"] == "M_USER_IN_USE"
    bob = await c.register("bob")

    flows = await c.ok("GET", f"{V3}/login")
    assert {"type": "m.login.password"} in flows["flows"]
    login = await c.ok(
        "POST",
        f"{V3}/login",
        {
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": "alice"},
            "password": "correct horse",
            "initial_device_display_name": "端末",
        },
    )
    assert login["user_id"] == alice.user_id
    wrong = await c.request(
        "POST",
        f"{V3}/login",
        {
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": "alice"},
            "password": "wrong",
        },
    )
    assert wrong.status == 403 and wrong.body["errcode"] == "M_FORBIDDEN"

    me = await c.ok("GET", f"{V3}/account/whoami", token=login["access_token"])
    assert me == {"user_id": alice.user_id, "device_id": login["device_id"], "is_guest": False}
    missing = await c.request("GET", f"{V3}/account/whoami")
    assert missing.status == 401 and missing.body["errcode"] == "M_MISSING_TOKEN"
    unknown = await c.request("GET", f"{V3}/account/whoami", token="nope")
    assert unknown.status == 401 and unknown.body["errcode"] == "M_UNKNOWN_TOKEN"

    caps = await alice.ok("GET", f"{V3}/capabilities")
    assert (
        caps["capabilities"]["m.room_versions"]["default"]
        in (caps["capabilities"]["m.room_versions"]["available"])
    )

    # Profiles and the user directory.
    profile = f"{V3}/profile/{quote(alice.user_id)}"
    await alice.ok("PUT", profile + "/displayname", {"displayname": "山田 太郎"})
    await alice.ok("PUT", profile + "/avatar_url", {"avatar_url": "mxc://example.org/abc"})
    assert await c.ok("GET", profile) == {
        "displayname": "山田 太郎",
        "avatar_url": "mxc://example.org/abc",
    }
    assert await c.ok("GET", profile + "/displayname") == {"displayname": "山田 太郎"}
    assert await c.ok("GET", profile + "/avatar_url") == {"avatar_url": "mxc://example.org/abc"}
    other = await bob.request("PUT", profile + "/displayname", {"displayname": "x"})
    assert other.status == 403 and other.body["errcode"] == "M_FORBIDDEN"
    nobody = await c.request("GET", f"{V3}/profile/{quote('@nobody:' + node.server_name)}")
    assert nobody.status == 404 and nobody.body["errcode"] == "M_NOT_FOUND"
    found = await bob.ok("POST", f"{V3}/user_directory/search", {"search_term": "やまだ"})
    assert [r["user_id"] for r in found["results"]] == [alice.user_id]
    assert found["limited"] is False

    # Password change (UIA), logout, logout/all.
    uia = await alice.request("POST", f"{V3}/account/password", {"new_password": "new pw"})
    assert uia.status == 401 and "flows" in uia.body
    await alice.ok(
        "POST",
        f"{V3}/account/password",
        {
            "new_password": "new pw",
            "logout_devices": False,
            "auth": {
                "type": "m.login.password",
                "password": "correct horse",
                "session": uia.body["session"],
            },
        },
    )
    await c.ok("POST", f"{V3}/logout", {}, token=login["access_token"])
    gone = await c.request("GET", f"{V3}/account/whoami", token=login["access_token"])
    assert gone.status == 401 and gone.body["errcode"] == "M_UNKNOWN_TOKEN"
    await bob.ok("POST", f"{V3}/logout/all", {})
    assert (await bob.request("GET", f"{V3}/account/whoami")).status == 401

    c.check(
        "GET /_matrix/client/versions",
        "GET /.well-known/matrix/client",
        "POST /_matrix/client/v3/register",
        "GET /_matrix/client/v3/register/available",
        "GET /_matrix/client/v3/login",
        "POST /_matrix/client/v3/login",
        "GET /_matrix/client/v3/account/whoami",
        "GET /_matrix/client/v3/capabilities",
        "PUT /_matrix/client/v3/profile/{userId}/{keyName}",
        "PUT /_matrix/client/v3/profile/{userId}/{keyName}",
        "GET /_matrix/client/v3/profile/{userId}",
        "GET /_matrix/client/v3/profile/{userId}/{keyName}",
        "GET /_matrix/client/v3/profile/{userId}/{keyName}",
        "POST /_matrix/client/v3/user_directory/search",
        "POST /_matrix/client/v3/account/password",
        "POST /_matrix/client/v3/logout",
        "POST /_matrix/client/v3/logout/all",
    )


# ----------------------------------------------------------------------------- rooms


async def test_room_lifecycle(node: Node, vclient: ValidatingClient) -> None:
    c = vclient
    alice = await c.register("alice")
    bob = await c.register("bob")
    carol = await c.register("carol")
    created = await alice.ok(
        "POST",
        f"{V3}/createRoom",
        {
            "name": "防災連絡",
            "topic": "訓練",
            "preset": "public_chat",
            "room_alias_name": "bousai",
            "visibility": "public",
        },
    )
    room_id = created["room_id"]
    alias = f"#bousai:{node.server_name}"
    assert created["room_alias"] == alias
    qalias = quote(alias, safe="")

    # Aliases and the directory.
    assert (await c.ok("GET", f"{V3}/directory/room/{qalias}"))["room_id"] == room_id
    second = f"#second:{node.server_name}"
    await alice.ok("PUT", f"{V3}/directory/room/{quote(second, safe='')}", {"room_id": room_id})
    assert sorted((await alice.ok("GET", room_path(room_id, "/aliases")))["aliases"]) == sorted(
        [alias, second]
    )
    dup = await alice.request(
        "PUT", f"{V3}/directory/room/{quote(second, safe='')}", {"room_id": room_id}
    )
    assert dup.status == 409
    await alice.ok("DELETE", f"{V3}/directory/room/{quote(second, safe='')}")
    missing = await c.request("GET", f"{V3}/directory/room/{quote(second, safe='')}")
    assert missing.status == 404 and missing.body["errcode"] == "M_NOT_FOUND"
    vis = f"{V3}/directory/list/room/{quote(room_id, safe='')}"
    assert await c.ok("GET", vis) == {"visibility": "public"}
    public = await c.ok("GET", f"{V3}/publicRooms")
    assert [r["room_id"] for r in public["chunk"]] == [room_id]
    searched = await bob.ok(
        "POST", f"{V3}/publicRooms", {"limit": 5, "filter": {"generic_search_term": "防災"}}
    )
    assert [r["room_id"] for r in searched["chunk"]] == [room_id]
    await alice.ok("PUT", vis, {"visibility": "private"})
    assert (await c.ok("GET", f"{V3}/publicRooms"))["chunk"] == []

    # Membership: join by alias, invite, leave, kick, ban, unban.
    assert (await bob.ok("POST", f"{V3}/join/{qalias}", {}))["room_id"] == room_id
    await alice.ok("POST", room_path(room_id, "/invite"), {"user_id": carol.user_id})
    await carol.ok("POST", room_path(room_id, "/join"), {})
    await carol.ok("POST", room_path(room_id, "/leave"), {"reason": "bye"})
    await carol.ok("POST", f"{V3}/join/{quote(room_id, safe='')}", {})
    await alice.ok("POST", room_path(room_id, "/kick"), {"user_id": carol.user_id, "reason": "r"})
    await alice.ok("POST", room_path(room_id, "/ban"), {"user_id": carol.user_id})
    banned = await carol.request("POST", room_path(room_id, "/join"), {})
    assert banned.status == 403 and banned.body["errcode"] == "M_FORBIDDEN"
    await alice.ok("POST", room_path(room_id, "/unban"), {"user_id": carol.user_id})
    not_allowed = await bob.request("POST", room_path(room_id, "/kick"), {"user_id": alice.user_id})
    assert not_allowed.status == 403
    assert (await carol.ok("GET", f"{V3}/joined_rooms"))["joined_rooms"] == []
    assert (await bob.ok("GET", f"{V3}/joined_rooms"))["joined_rooms"] == [room_id]

    # Messages and state.
    sent = await alice.ok(
        "PUT", room_path(room_id, "/send/m.room.message/txn1"), {"msgtype": "m.text", "body": "一"}
    )
    second_id = await bob.send(room_id, "二")
    state_put = await alice.ok(
        "PUT", room_path(room_id, "/state/m.room.topic"), {"topic": "新しい話題"}
    )
    assert state_put["event_id"].startswith("$")
    await alice.ok("PUT", room_path(room_id, "/state/org.example.custom/key"), {"k": 1})
    assert await bob.ok("GET", room_path(room_id, "/state/m.room.topic")) == {"topic": "新しい話題"}
    assert await bob.ok("GET", room_path(room_id, "/state/m.room.topic/")) == {
        "topic": "新しい話題"
    }
    as_event = await bob.ok(
        "GET", room_path(room_id, "/state/org.example.custom/key"), params={"format": "event"}
    )
    assert as_event["content"] == {"k": 1} and as_event["state_key"] == "key"
    absent = await bob.request("GET", room_path(room_id, "/state/m.room.avatar"))
    assert absent.status == 404 and absent.body["errcode"] == "M_NOT_FOUND"
    state = await bob.ok("GET", room_path(room_id, "/state"))
    assert {(e["type"], e["state_key"]) for e in state} >= {
        ("m.room.create", ""),
        ("m.room.topic", ""),
        ("m.room.member", bob.user_id),
    }
    members = await bob.ok("GET", room_path(room_id, "/members"))
    assert {e["state_key"] for e in members["chunk"]} == {alice.user_id, bob.user_id, carol.user_id}
    joined_only = await bob.ok("GET", room_path(room_id, "/members"), params={"membership": "join"})
    assert {e["state_key"] for e in joined_only["chunk"]} == {alice.user_id, bob.user_id}
    joined = await bob.ok("GET", room_path(room_id, "/joined_members"))
    assert set(joined["joined"]) == {alice.user_id, bob.user_id}
    # No avatar: the key is left out, not null (the spec types it as a string).
    assert joined["joined"][bob.user_id] == {"display_name": "bob"}

    event = await bob.ok("GET", room_path(room_id, f"/event/{quote(sent['event_id'])}"))
    assert event["content"]["body"] == "一" and event["room_id"] == room_id
    unknown_event = await bob.request("GET", room_path(room_id, "/event/$nope"))
    assert unknown_event.status == 404 and unknown_event.body["errcode"] == "M_NOT_FOUND"
    history = await bob.ok(
        "GET", room_path(room_id, "/messages"), params={"dir": "b", "limit": "3"}
    )
    assert len(history["chunk"]) == 3 and "end" in history
    forward = await bob.ok("GET", room_path(room_id, "/messages"), params={"dir": "f"})
    assert forward["chunk"][0]["type"] == "m.room.create"
    context = await bob.ok(
        "GET", room_path(room_id, f"/context/{quote(second_id)}"), params={"limit": "4"}
    )
    assert context["event"]["event_id"] == second_id
    assert context["events_before"][0]["event_id"] == sent["event_id"]

    redaction = await alice.ok(
        "PUT", room_path(room_id, f"/redact/{quote(second_id)}/r1"), {"reason": "spam"}
    )
    redacted = await bob.ok("GET", room_path(room_id, f"/event/{quote(second_id)}"))
    assert redacted["content"] == {}
    assert redacted["unsigned"]["redacted_because"]["event_id"] == redaction["event_id"]
    not_mine = await bob.request(
        "PUT", room_path(room_id, f"/redact/{quote(sent['event_id'])}/r2"), {}
    )
    assert not_mine.status == 403 and not_mine.body["errcode"] == "M_FORBIDDEN"

    # A departed member reads the members as they were when they left; an outsider nothing.
    departed = await carol.ok("GET", room_path(room_id, "/members"))
    assert {e["state_key"] for e in departed["chunk"]} == {
        alice.user_id,
        bob.user_id,
        carol.user_id,
    }
    # Once she forgets the room, she reads it as an outsider (as Synapse answers).
    await carol.ok("POST", room_path(room_id, "/forget"), {})
    forgotten = await carol.request("GET", room_path(room_id, "/members"))
    assert forgotten.status == 403 and forgotten.body["errcode"] == "M_FORBIDDEN"
    dave = await c.register("dave")
    outsider = await dave.request("GET", room_path(room_id, "/members"))
    assert outsider.status == 403 and outsider.body["errcode"] == "M_FORBIDDEN"
    nosend = await carol.request(
        "PUT", room_path(room_id, "/send/m.room.message/x"), {"msgtype": "m.text", "body": "x"}
    )
    assert nosend.status == 403 and nosend.body["errcode"] == "M_FORBIDDEN"

    c.check(
        "POST /_matrix/client/v3/createRoom",
        "GET /_matrix/client/v3/directory/room/{roomAlias}",
        "PUT /_matrix/client/v3/directory/room/{roomAlias}",
        "DELETE /_matrix/client/v3/directory/room/{roomAlias}",
        "GET /_matrix/client/v3/rooms/{roomId}/aliases",
        "GET /_matrix/client/v3/directory/list/room/{roomId}",
        "PUT /_matrix/client/v3/directory/list/room/{roomId}",
        "GET /_matrix/client/v3/publicRooms",
        "POST /_matrix/client/v3/publicRooms",
        "POST /_matrix/client/v3/join/{roomIdOrAlias}",
        "POST /_matrix/client/v3/rooms/{roomId}/join",
        "POST /_matrix/client/v3/rooms/{roomId}/invite",
        "POST /_matrix/client/v3/rooms/{roomId}/leave",
        "POST /_matrix/client/v3/rooms/{roomId}/kick",
        "POST /_matrix/client/v3/rooms/{roomId}/ban",
        "POST /_matrix/client/v3/rooms/{roomId}/unban",
        "POST /_matrix/client/v3/rooms/{roomId}/forget",
        "GET /_matrix/client/v3/joined_rooms",
        "PUT /_matrix/client/v3/rooms/{roomId}/send/{eventType}/{txnId}",
        "PUT /_matrix/client/v3/rooms/{roomId}/state/{eventType}/{stateKey}",
        "GET /_matrix/client/v3/rooms/{roomId}/state/{eventType}/{stateKey}",
        "GET /_matrix/client/v3/rooms/{roomId}/state",
        "GET /_matrix/client/v3/rooms/{roomId}/members",
        "GET /_matrix/client/v3/rooms/{roomId}/joined_members",
        "GET /_matrix/client/v3/rooms/{roomId}/event/{eventId}",
        "GET /_matrix/client/v3/rooms/{roomId}/messages",
        "GET /_matrix/client/v3/rooms/{roomId}/context/{eventId}",
        "PUT /_matrix/client/v3/rooms/{roomId}/redact/{eventId}/{txnId}",
    )


# ----------------------------------------------------------------------------- sync


async def test_sync_and_user_data(node: Node, vclient: ValidatingClient) -> None:
    c = vclient
    alice = await c.register("alice")
    bob = await c.register("bob")
    user_path = f"{V3}/user/{quote(alice.user_id)}"
    room_id = await alice.create_room(name="連絡", preset="private_chat")
    await alice.invite(room_id, bob.user_id)

    invited = await bob.sync()
    assert room_id in invited["rooms"]["invite"]
    await bob.join(room_id)
    first = await alice.send(room_id, "おはよう")

    initial = await alice.sync()
    joined = initial["rooms"]["join"][room_id]
    assert first in [e["event_id"] for e in joined["timeline"]["events"]]

    # Account data, global and per room, set and read back.
    await alice.ok("PUT", f"{user_path}/account_data/org.example.settings", {"theme": "dark"})
    assert await alice.ok("GET", f"{user_path}/account_data/org.example.settings") == {
        "theme": "dark"
    }
    room_data = f"{user_path}/rooms/{quote(room_id, safe='')}/account_data/org.example.note"
    await alice.ok("PUT", room_data, {"note": "重要"})
    assert await alice.ok("GET", room_data) == {"note": "重要"}
    none = await alice.request("GET", f"{user_path}/account_data/org.example.none")
    assert none.status == 404 and none.body["errcode"] == "M_NOT_FOUND"
    not_own = await bob.request("GET", f"{user_path}/account_data/org.example.settings")
    assert not_own.status == 403 and not_own.body["errcode"] == "M_FORBIDDEN"

    # Receipts, read markers, typing.
    second = await bob.send(room_id, "こんにちは")
    await alice.ok("POST", room_path(room_id, f"/receipt/m.read/{quote(second)}"), {})
    await alice.ok(
        "POST",
        room_path(room_id, "/read_markers"),
        {"m.fully_read": second, "m.read.private": second},
    )
    await bob.ok(
        "PUT",
        room_path(room_id, f"/typing/{quote(bob.user_id)}"),
        {"typing": True, "timeout": 30000},
    )

    incremental = await alice.sync(since=initial["next_batch"])
    entry = incremental["rooms"]["join"][room_id]
    assert [e["event_id"] for e in entry["timeline"]["events"]] == [second]
    ephemeral = {e["type"]: e["content"] for e in entry["ephemeral"]["events"]}
    assert ephemeral["m.typing"] == {"user_ids": [bob.user_id]}
    assert alice.user_id in ephemeral["m.receipt"][second]["m.read"]
    assert alice.user_id in ephemeral["m.receipt"][second]["m.read.private"]
    room_types = {e["type"] for e in entry["account_data"]["events"]}
    assert {"org.example.note", "m.fully_read"} <= room_types
    assert {"type": "org.example.settings", "content": {"theme": "dark"}} in incremental[
        "account_data"
    ]["events"]
    # Bob sees Alice's public receipt, never her private one.
    bob_view = await bob.sync(since=invited["next_batch"])
    bob_receipts = next(
        e["content"]
        for e in bob_view["rooms"]["join"][room_id]["ephemeral"]["events"]
        if e["type"] == "m.receipt"
    )
    assert "m.read.private" not in bob_receipts[second]

    # Filters: stored and inline.
    created = await alice.ok(
        "POST",
        f"{user_path}/filter",
        {"room": {"timeline": {"limit": 1}, "state": {"lazy_load_members": True}}},
    )
    stored = await alice.ok("GET", f"{user_path}/filter/{created['filter_id']}")
    assert stored["room"]["timeline"]["limit"] == 1
    unknown_filter = await alice.request("GET", f"{user_path}/filter/99999")
    assert unknown_filter.status == 404
    filtered = await alice.sync(filter=created["filter_id"])
    timeline = filtered["rooms"]["join"][room_id]["timeline"]
    assert len(timeline["events"]) == 1 and timeline["limited"] is True
    inline = await alice.sync(filter='{"room":{"timeline":{"limit":2}}}')
    assert len(inline["rooms"]["join"][room_id]["timeline"]["events"]) == 2

    # Leaving shows up in the leave section; long-polling wakes on news.
    await bob.ok("POST", room_path(room_id, "/leave"), {})
    after_leave = await bob.sync(since=bob_view["next_batch"])
    assert room_id in after_leave["rooms"]["leave"]
    caught_up = await alice.sync(since=incremental["next_batch"])
    waiting = asyncio.create_task(alice.sync(since=caught_up["next_batch"], timeout=10_000))
    await asyncio.sleep(0.1)
    woke = await alice.send(room_id, "起きて")
    woken = await asyncio.wait_for(waiting, 10)
    assert woke in [e["event_id"] for e in woken["rooms"]["join"][room_id]["timeline"]["events"]]
    bad_since = await alice.request("GET", f"{V3}/sync", params={"since": "garbage"})
    assert bad_since.status == 400

    c.check(
        "GET /_matrix/client/v3/sync",
        "PUT /_matrix/client/v3/user/{userId}/account_data/{type}",
        "GET /_matrix/client/v3/user/{userId}/account_data/{type}",
        "PUT /_matrix/client/v3/user/{userId}/rooms/{roomId}/account_data/{type}",
        "GET /_matrix/client/v3/user/{userId}/rooms/{roomId}/account_data/{type}",
        "POST /_matrix/client/v3/rooms/{roomId}/receipt/{receiptType}/{eventId}",
        "POST /_matrix/client/v3/rooms/{roomId}/read_markers",
        "PUT /_matrix/client/v3/rooms/{roomId}/typing/{userId}",
        "POST /_matrix/client/v3/user/{userId}/filter",
        "GET /_matrix/client/v3/user/{userId}/filter/{filterId}",
    )


async def test_error_responses_match_the_spec(node: Node, vclient: ValidatingClient) -> None:
    c = vclient
    alice = await c.register("alice")
    room_id = await alice.create_room()
    cases: list[tuple[str, str, Any, int, str]] = [
        ("GET", f"{V3}/joined_rooms", None, 401, "M_MISSING_TOKEN"),
        ("POST", f"{V3}/createRoom", {"room_version": "999"}, 400, "M_UNSUPPORTED_ROOM_VERSION"),
        ("POST", f"{V3}/createRoom", {"preset": "nope"}, 400, "M_BAD_JSON"),
        ("POST", f"{V3}/join/{quote('!unknown:example.org')}", {}, 404, "M_NOT_FOUND"),
        ("POST", room_path(room_id, "/invite"), {"user_id": "not a user"}, 400, "M_INVALID_PARAM"),
        ("POST", room_path(room_id, "/invite"), {}, 400, "M_MISSING_PARAM"),
        ("GET", room_path("!nope:x", "/messages"), None, 403, "M_FORBIDDEN"),
        ("GET", room_path(room_id, "/messages"), None, 200, ""),
        ("GET", f"{V3}/directory/room/{quote('#nope:x', safe='')}", None, 404, "M_NOT_FOUND"),
        ("GET", f"{V3}/no_such_endpoint", None, 404, "M_UNRECOGNIZED"),
    ]
    for method, path, body, status, errcode in cases:
        response = (
            await alice.request(method, path, body)
            if status != 401
            else await c.request(method, path, body)
        )
        assert response.status == status, (method, path, response)
        if errcode:
            assert response.body["errcode"] == errcode, (method, path, response)
    # An unknown endpoint is not in the spec at all: recorded apart, not validated.
    assert c.spec is None or any("no_such_endpoint" in u for u in c.unknown), c.unknown
    c.check("GET /_matrix/client/v3/joined_rooms", "POST /_matrix/client/v3/createRoom")


async def test_every_user_can_use_a_second_device(node: Node, vclient: ValidatingClient) -> None:
    """Two devices of one user: both sync, both see the message, transaction IDs per device."""
    alice = await vclient.register("alice")
    login = await vclient.ok(
        "POST",
        f"{V3}/login",
        {"type": "m.login.password", "user": "alice", "password": "correct horse"},
    )
    phone = User(vclient, alice.user_id, login["access_token"], login["device_id"])
    room_id = await alice.create_room()
    sent = await alice.send(room_id, "from the laptop")
    laptop_view = await alice.sync()
    phone_view = await phone.sync()
    laptop_event = next(
        e
        for e in laptop_view["rooms"]["join"][room_id]["timeline"]["events"]
        if e["event_id"] == sent
    )
    phone_event = next(
        e
        for e in phone_view["rooms"]["join"][room_id]["timeline"]["events"]
        if e["event_id"] == sent
    )
    assert "transaction_id" in laptop_event["unsigned"]
    assert "transaction_id" not in phone_event["unsigned"]
    vclient.check("GET /_matrix/client/v3/sync", "POST /_matrix/client/v3/login")


async def test_state_events_carry_what_they_replaced(node: Node, vclient: ValidatingClient) -> None:
    """unsigned.prev_content/prev_sender/replaces_state on state events in timelines, so a
    client can say "renamed the room from X" or "changed their display name"."""
    alice = await vclient.register("alice")
    bob = await vclient.register("bob")
    room_id = await alice.create_room(name="旧名", preset="public_chat")
    await bob.join(room_id)
    since = (await alice.sync())["next_batch"]
    renamed = await bob.request("PUT", room_path(room_id, "/state/m.room.name"), {"name": "x"})
    assert renamed.status == 403  # bob has no power for it: nothing changes
    first = await alice.ok("PUT", room_path(room_id, "/state/m.room.name"), {"name": "新名"})
    await bob.ok("PUT", f"{V3}/profile/{quote(bob.user_id)}/displayname", {"displayname": "ボブ"})

    synced = await alice.sync(since=since)
    timeline = synced["rooms"]["join"][room_id]["timeline"]["events"]
    name = next(e for e in timeline if e["type"] == "m.room.name")
    assert name["event_id"] == first["event_id"]
    assert name["unsigned"]["prev_content"] == {"name": "旧名"}
    assert name["unsigned"]["prev_sender"] == alice.user_id
    member = next(e for e in timeline if e["type"] == "m.room.member")
    assert member["content"]["displayname"] == "ボブ"
    assert member["unsigned"]["prev_content"]["membership"] == "join"
    assert member["unsigned"]["prev_content"].get("displayname") == "bob"
    history = await alice.ok("GET", room_path(room_id, "/messages"), params={"dir": "f"})
    create = history["chunk"][0]
    assert create["type"] == "m.room.create" and "prev_content" not in create["unsigned"]
    old_name = next(e for e in history["chunk"] if e["type"] == "m.room.name")
    assert "prev_content" not in old_name["unsigned"]  # the first name replaced nothing
    again = next(e for e in history["chunk"] if e["event_id"] == first["event_id"])
    assert again["unsigned"]["replaces_state"] == old_name["event_id"]
    vclient.check("GET /_matrix/client/v3/sync", "GET /_matrix/client/v3/rooms/{roomId}/messages")


async def test_sync_leave_section(node: Node, vclient: ValidatingClient) -> None:
    """Every way out of a room shows in the leave section with the membership event that
    caused it: leave, kick, ban, a rejected and a rescinded invite."""
    alice = await vclient.register("alice")
    bob = await vclient.register("bob")
    rooms = {
        name: await alice.create_room(preset="public_chat")
        for name in ("leave", "kick", "ban", "rejected", "rescinded")
    }
    for name in ("leave", "kick", "ban"):
        await bob.join(rooms[name])
    for name in ("rejected", "rescinded"):
        await alice.invite(rooms[name], bob.user_id)
    start = await bob.sync()
    assert set(start["rooms"]["join"]) == {rooms["leave"], rooms["kick"], rooms["ban"]}
    assert set(start["rooms"]["invite"]) == {rooms["rejected"], rooms["rescinded"]}

    await bob.ok("POST", room_path(rooms["leave"], "/leave"), {})
    await alice.ok("POST", room_path(rooms["kick"], "/kick"), {"user_id": bob.user_id})
    await alice.ok(
        "POST", room_path(rooms["ban"], "/ban"), {"user_id": bob.user_id, "reason": "spam"}
    )
    await bob.ok("POST", room_path(rooms["rejected"], "/leave"), {})
    await alice.ok("POST", room_path(rooms["rescinded"], "/kick"), {"user_id": bob.user_id})
    for room_id in rooms.values():
        await alice.send(room_id, "after bob left")

    synced = await bob.sync(since=start["next_batch"])
    assert set(synced["rooms"]) == {"leave"}
    assert set(synced["rooms"]["leave"]) == set(rooms.values())
    for name, room_id in rooms.items():
        timeline = synced["rooms"]["leave"][room_id]["timeline"]["events"]
        assert timeline, name
        last = timeline[-1]
        assert (last["type"], last["state_key"]) == ("m.room.member", bob.user_id), name
        expected = "ban" if name == "ban" else "leave"
        assert last["content"]["membership"] == expected, name
        assert last["sender"] == (bob.user_id if name in ("leave", "rejected") else alice.user_id)
        assert all(e["content"].get("body") != "after bob left" for e in timeline), name
    ban = synced["rooms"]["leave"][rooms["ban"]]["timeline"]["events"][-1]
    assert ban["content"]["reason"] == "spam"
    # The banned user's own history ends with the ban.
    history = await bob.ok("GET", room_path(rooms["ban"], "/messages"), params={"dir": "b"})
    assert history["chunk"][0]["event_id"] == ban["event_id"]
    assert (await bob.sync(since=synced["next_batch"]))["rooms"] == {}
    vclient.check("GET /_matrix/client/v3/sync")


async def test_event_filters(node: Node, vclient: ValidatingClient) -> None:
    """Room event filters in /messages and /sync: types with the spec's ``*`` wildcard,
    not_types, senders; an empty types list includes nothing."""
    alice = await vclient.register("alice")
    bob = await vclient.register("bob")
    room_id = await alice.create_room(preset="public_chat")
    await bob.join(room_id)
    await alice.send(room_id, "from alice")
    await bob.send(room_id, "from bob")
    await alice.ok("PUT", room_path(room_id, "/send/org.example.x/f1"), {"a": 1})
    await alice.ok("PUT", room_path(room_id, "/send/m_room_x/f2"), {"a": 1})  # "_" is literal

    async def types_of(event_filter: dict[str, Any]) -> list[str]:
        page = await alice.ok(
            "GET",
            room_path(room_id, "/messages"),
            params={"dir": "f", "limit": "100", "filter": json.dumps(event_filter)},
        )
        return [e["type"] for e in page["chunk"]]

    everything = await types_of({})
    assert "org.example.x" in everything and "m.room.create" in everything
    assert await types_of({"types": ["*"]}) == everything
    assert set(await types_of({"types": ["m.room.*"]})) == {
        t for t in everything if t.startswith("m.room.")
    }
    assert await types_of({"types": ["m.room.mess*"]}) == ["m.room.message"] * 2
    assert await types_of({"types": ["org.example.x", "m_room_*"]}) == ["org.example.x", "m_room_x"]
    assert "m.room.message" not in await types_of({"not_types": ["m.room.m*"]})
    assert await types_of({"types": []}) == []
    assert await types_of({"types": ["m.room.message"], "senders": [bob.user_id]}) == [
        "m.room.message"
    ]
    synced = await alice.sync(
        filter=json.dumps({"room": {"timeline": {"limit": 50, "types": ["org.*", "m.room.mes*"]}}})
    )
    timeline = synced["rooms"]["join"][room_id]["timeline"]["events"]
    assert [e["type"] for e in timeline] == ["m.room.message", "m.room.message", "org.example.x"]
    vclient.check("GET /_matrix/client/v3/rooms/{roomId}/messages", "GET /_matrix/client/v3/sync")


async def test_transaction_ids(node: Node, vclient: ValidatingClient) -> None:
    """A transaction is scoped to a device and an endpoint (the request path): a retry gets
    the first answer; the same ID on another room, event type, redacted event or device is
    another transaction and creates its own event."""
    alice = await vclient.register("alice")
    room_a = await alice.create_room()
    room_b = await alice.create_room()
    message = {"msgtype": "m.text", "body": "一回だけ"}
    first = await alice.ok("PUT", room_path(room_a, "/send/m.room.message/t1"), message)
    assert await alice.ok("PUT", room_path(room_a, "/send/m.room.message/t1"), message) == first
    in_b = await alice.ok("PUT", room_path(room_b, "/send/m.room.message/t1"), message)
    other_type = await alice.ok("PUT", room_path(room_a, "/send/org.example.other/t1"), message)
    ids = {first["event_id"], in_b["event_id"], other_type["event_id"]}
    assert len(ids) == 3
    history = await alice.ok("GET", room_path(room_b, "/messages"), params={"dir": "b"})
    assert [e["event_id"] for e in history["chunk"] if e["type"] == "m.room.message"] == [
        in_b["event_id"]
    ]
    # Another device of the same user has its own transactions.
    login = await vclient.ok(
        "POST",
        f"{V3}/login",
        {"type": "m.login.password", "user": "alice", "password": "correct horse"},
    )
    other = await vclient.ok(
        "PUT", room_path(room_a, "/send/m.room.message/t1"), message, token=login["access_token"]
    )
    assert other["event_id"] not in ids
    # Redactions: a retry is idempotent; the same ID for another target redacts that too.
    second_sent = room_path(room_a, "/send/m.room.message/t2")
    second = (await alice.ok("PUT", second_sent, {"msgtype": "m.text", "body": "二"}))["event_id"]
    redact = room_path(room_a, f"/redact/{quote(first['event_id'])}/t1")
    redaction = await alice.ok("PUT", redact, {})
    assert redaction["event_id"] not in ids
    assert await alice.ok("PUT", redact, {}) == redaction
    elsewhere = await alice.ok("PUT", room_path(room_a, f"/redact/{quote(second)}/t1"), {})
    assert elsewhere["event_id"] != redaction["event_id"]
    # The sending device sees its own transaction ID (exactly as sent) on each of them.
    timeline = await alice.ok(
        "GET", room_path(room_a, "/messages"), params={"dir": "b", "limit": "50"}
    )
    by_id = {e["event_id"]: e for e in timeline["chunk"]}
    for sent in (first, other_type, redaction, elsewhere):
        assert by_id[sent["event_id"]]["unsigned"]["transaction_id"] == "t1"
    assert "transaction_id" not in by_id[other["event_id"]].get("unsigned", {})
    assert "redacted_because" in by_id[second]["unsigned"]
    vclient.check(
        "PUT /_matrix/client/v3/rooms/{roomId}/send/{eventType}/{txnId}",
        "PUT /_matrix/client/v3/rooms/{roomId}/redact/{eventId}/{txnId}",
    )


async def test_history_visibility(node: Node, vclient: ValidatingClient) -> None:
    """Who reads what, per history_visibility, while joined, after leaving and from outside
    (the spec's rules as Synapse applies them: "shared" history is for current members)."""
    alice = await vclient.register("alice")
    bob = await vclient.register("bob")
    carol = await vclient.register("carol")
    order = ["before invite", "while invited", "while joined", "after leave"]
    expected = {
        # visibility: (Bob while joined, Bob after leaving, Carol who never joined)
        "joined": (order[2:3], order[2:3], None),
        "invited": (order[1:3], order[1:3], None),
        "shared": (order[0:3], order[2:3], None),
        "world_readable": (order[0:3], order[0:3], order),
    }

    async def readable(user: User, room_id: str) -> list[str] | None:
        page = await user.request(
            "GET", room_path(room_id, "/messages"), params={"dir": "f", "limit": "50"}
        )
        if page.status == 403:
            return None
        assert page.status == 200, page
        return [e["content"]["body"] for e in page.body["chunk"] if e["type"] == "m.room.message"]

    for visibility, (joined, left, outsider) in expected.items():
        room_id = await alice.create_room(
            preset="public_chat",
            initial_state=[
                {
                    "type": "m.room.history_visibility",
                    "content": {"history_visibility": visibility},
                }
            ],
        )
        ids = [await alice.send(room_id, order[0])]
        await alice.invite(room_id, bob.user_id)
        ids.append(await alice.send(room_id, order[1]))
        await bob.join(room_id)
        ids.append(await alice.send(room_id, order[2]))
        assert await readable(bob, room_id) == joined, visibility
        await bob.ok("POST", room_path(room_id, "/leave"), {})
        ids.append(await alice.send(room_id, order[3]))
        assert await readable(bob, room_id) == left, visibility
        assert await readable(carol, room_id) == outsider, visibility
        # Single events and their context follow the same rules; /messages of a departed
        # user stops at the leave even in a world-readable room (as Synapse clamps it), but
        # a world-readable event is readable by anyone.
        public = visibility == "world_readable"
        for event_id, body in zip(ids, order, strict=True):
            single = await bob.request("GET", room_path(room_id, f"/event/{quote(event_id)}"))
            assert single.status == (200 if body in left or public else 404), (visibility, body)
        after = await bob.request("GET", room_path(room_id, f"/context/{quote(ids[3])}"))
        assert after.status == (200 if public else 404), visibility
        # State: a departed member reads the state as it was when they left; an outsider
        # reads the current state of a world-readable room only.
        await alice.ok("PUT", room_path(room_id, "/state/m.room.topic"), {"topic": "later"})
        state = await bob.ok("GET", room_path(room_id, "/state"))
        assert ("m.room.topic", "") not in {(e["type"], e["state_key"]) for e in state}
        own = await bob.ok("GET", room_path(room_id, f"/state/m.room.member/{quote(bob.user_id)}"))
        assert own["membership"] == "leave"
        members = await bob.ok("GET", room_path(room_id, "/members"), params={"membership": "join"})
        assert [e["state_key"] for e in members["chunk"]] == [alice.user_id]
        outside = await carol.request("GET", room_path(room_id, "/state/m.room.topic"))
        if public:
            assert outside.status == 200 and outside.body == {"topic": "later"}
        else:
            assert outside.status == 403 and outside.body["errcode"] == "M_FORBIDDEN"
    vclient.check("GET /_matrix/client/v3/rooms/{roomId}/messages")


# ----------------------------------------------------------------------------- devices,
# keys, to-device, push rules, media


def signed_device_keys(user_id: str, device_id: str) -> dict[str, Any]:
    key = generate_signing_key(device_id)
    keys = {
        "user_id": user_id,
        "device_id": device_id,
        "algorithms": ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
        "keys": {
            f"curve25519:{device_id}": encode_base64(b"c" * 32),
            f"ed25519:{device_id}": key.public_key_base64,
        },
    }
    return sign_json(keys, user_id, key)


async def test_devices_keys_to_device_and_push_rules(node: Node, vclient: ValidatingClient) -> None:
    c = vclient
    alice = await c.register("alice")
    bob = await c.register("bob")
    since = (await bob.sync())["next_batch"]

    # Devices: list, get, rename, delete with user-interactive auth.
    listed = await alice.ok("GET", f"{V3}/devices")
    assert [d["device_id"] for d in listed["devices"]] == [alice.device_id]
    await alice.ok("PUT", f"{V3}/devices/{alice.device_id}", {"display_name": "庁舎PC"})
    device = await alice.ok("GET", f"{V3}/devices/{alice.device_id}")
    assert device["display_name"] == "庁舎PC"
    unknown = await alice.request("GET", f"{V3}/devices/NOPE")
    assert unknown.status == 404 and unknown.body["errcode"] == "M_NOT_FOUND"
    login = await c.ok(
        "POST",
        f"{V3}/login",
        {"type": "m.login.password", "user": "alice", "password": "correct horse"},
    )
    spare = login["device_id"]
    uia = await alice.request("DELETE", f"{V3}/devices/{spare}", {})
    assert uia.status == 401 and "flows" in uia.body
    password_auth = {
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": "alice"},
        "password": "correct horse",
        "session": uia.body["session"],
    }
    await alice.ok("DELETE", f"{V3}/devices/{spare}", {"auth": password_auth})
    second = await c.ok(
        "POST",
        f"{V3}/login",
        {"type": "m.login.password", "user": "alice", "password": "correct horse"},
    )
    uia = await alice.request("POST", f"{V3}/delete_devices", {"devices": [second["device_id"]]})
    assert uia.status == 401
    await alice.ok(
        "POST",
        f"{V3}/delete_devices",
        {
            "devices": [second["device_id"]],
            "auth": {**password_auth, "session": uia.body["session"]},
        },
    )
    listed = await alice.ok("GET", f"{V3}/devices")
    assert [d["device_id"] for d in listed["devices"]] == [alice.device_id]

    # Keys: upload device, one-time and fallback keys; query, claim, changes.
    device_keys = signed_device_keys(alice.user_id, alice.device_id)
    counts = await alice.ok(
        "POST",
        f"{V3}/keys/upload",
        {
            "device_keys": device_keys,
            "one_time_keys": {
                "signed_curve25519:AAAAAQ": {
                    "key": encode_base64(b"o" * 32),
                    "signatures": {alice.user_id: {f"ed25519:{alice.device_id}": "c2ln"}},
                }
            },
            "fallback_keys": {
                "signed_curve25519:AAAAAg": {
                    "key": encode_base64(b"f" * 32),
                    "fallback": True,
                    "signatures": {alice.user_id: {f"ed25519:{alice.device_id}": "c2ln"}},
                }
            },
        },
    )
    assert counts["one_time_key_counts"]["signed_curve25519"] == 1
    queried = await bob.ok("POST", f"{V3}/keys/query", {"device_keys": {alice.user_id: []}})
    assert queried["device_keys"][alice.user_id][alice.device_id]["keys"] == device_keys["keys"]
    claimed = await bob.ok(
        "POST",
        f"{V3}/keys/claim",
        {"one_time_keys": {alice.user_id: {alice.device_id: "signed_curve25519"}}},
    )
    assert list(claimed["one_time_keys"][alice.user_id][alice.device_id]) == [
        "signed_curve25519:AAAAAQ"
    ]
    now = (await alice.sync())["next_batch"]
    changes = await alice.ok("GET", f"{V3}/keys/changes", params={"from": "s0_0", "to": now})
    assert alice.user_id in changes["changed"]

    # To-device: Alice to Bob's device; Bob's sync carries it.
    await alice.ok(
        "PUT",
        f"{V3}/sendToDevice/org.example.ping/td1",
        {"messages": {bob.user_id: {bob.device_id: {"n": 1}}}},
    )
    synced = await bob.sync(since=since)
    assert {
        "type": "org.example.ping",
        "sender": alice.user_id,
        "content": {"n": 1},
    } in synced["to_device"]["events"]

    # Push rules: the defaults, then a content rule added, read, toggled and removed.
    rules = await alice.ok("GET", f"{V3}/pushrules/")
    assert any(r["rule_id"] == ".m.rule.master" for r in rules["global"]["override"])
    assert (await alice.ok("GET", f"{V3}/pushrules/global/"))["override"]
    rule = f"{V3}/pushrules/global/content/bousai"
    await alice.ok("PUT", rule, {"pattern": "防災", "actions": ["notify"]})
    assert (await alice.ok("GET", rule))["pattern"] == "防災"
    await alice.ok("PUT", rule + "/enabled", {"enabled": False})
    assert await alice.ok("GET", rule + "/enabled") == {"enabled": False}
    assert await alice.ok("GET", rule + "/actions") == {"actions": ["notify"]}
    await alice.ok("DELETE", rule)
    gone = await alice.request("GET", rule)
    assert gone.status == 404 and gone.body["errcode"] == "M_NOT_FOUND"

    c.check(
        "GET /_matrix/client/v3/devices",
        "GET /_matrix/client/v3/devices/{deviceId}",
        "PUT /_matrix/client/v3/devices/{deviceId}",
        "DELETE /_matrix/client/v3/devices/{deviceId}",
        "POST /_matrix/client/v3/delete_devices",
        "POST /_matrix/client/v3/keys/upload",
        "POST /_matrix/client/v3/keys/query",
        "POST /_matrix/client/v3/keys/claim",
        "GET /_matrix/client/v3/keys/changes",
        "PUT /_matrix/client/v3/sendToDevice/{eventType}/{txnId}",
        "GET /_matrix/client/v3/pushrules/",
        "GET /_matrix/client/v3/pushrules/global/",
        "PUT /_matrix/client/v3/pushrules/global/{kind}/{ruleId}",
        "GET /_matrix/client/v3/pushrules/global/{kind}/{ruleId}",
        "DELETE /_matrix/client/v3/pushrules/global/{kind}/{ruleId}",
        "PUT /_matrix/client/v3/pushrules/global/{kind}/{ruleId}/enabled",
        "GET /_matrix/client/v3/pushrules/global/{kind}/{ruleId}/enabled",
        "GET /_matrix/client/v3/pushrules/global/{kind}/{ruleId}/actions",
    )


async def test_media(node: Node, vclient: ValidatingClient) -> None:
    c = vclient
    alice = await c.register("alice")
    image = io.BytesIO()
    Image.new("RGB", (120, 80), (0, 90, 160)).save(image, format="PNG")
    data = image.getvalue()
    uploaded = await alice.ok(
        "POST",
        "/_matrix/media/v3/upload",
        data=data,
        headers={"Content-Type": "image/png"},
        params={"filename": "地図.png"},
    )
    server, media_id = uploaded["content_uri"].removeprefix("mxc://").split("/")
    download = await alice.request("GET", f"/_matrix/client/v1/media/download/{server}/{media_id}")
    assert download.status == 200 and download.body == data
    named = await alice.request(
        "GET", f"/_matrix/client/v1/media/download/{server}/{media_id}/map.png"
    )
    assert named.status == 200 and named.body == data
    thumb = await alice.request(
        "GET",
        f"/_matrix/client/v1/media/thumbnail/{server}/{media_id}",
        params={"width": "32", "height": "32", "method": "scale"},
    )
    assert thumb.status == 200 and thumb.headers["Content-Type"].startswith("image/")
    unauthenticated = await c.request(
        "GET", f"/_matrix/client/v1/media/download/{server}/{media_id}"
    )
    assert unauthenticated.status == 401
    missing = await alice.request("GET", f"/_matrix/client/v1/media/download/{server}/nope")
    assert missing.status == 404 and missing.body["errcode"] == "M_NOT_FOUND"
    config = await alice.ok("GET", "/_matrix/client/v1/media/config")
    assert config["m.upload.size"] > len(data)
    assert await alice.ok("GET", "/_matrix/media/v3/config") == config
    created = await alice.ok("POST", "/_matrix/media/v1/create")
    later_server, later_id = created["content_uri"].removeprefix("mxc://").split("/")
    pending = await alice.request(
        "GET",
        f"/_matrix/client/v1/media/download/{later_server}/{later_id}",
        params={"timeout_ms": "0"},
    )
    assert pending.status == 504 and pending.body["errcode"] == "M_NOT_YET_UPLOADED"
    await alice.ok(
        "PUT",
        f"/_matrix/media/v3/upload/{later_server}/{later_id}",
        data=b"plain text",
        headers={"Content-Type": "text/plain"},
    )
    later = await alice.request(
        "GET", f"/_matrix/client/v1/media/download/{later_server}/{later_id}"
    )
    assert later.status == 200 and later.body == b"plain text"

    c.check(
        "POST /_matrix/media/v3/upload",
        "POST /_matrix/media/v1/create",
        "PUT /_matrix/media/v3/upload/{serverName}/{mediaId}",
        "GET /_matrix/client/v1/media/download/{serverName}/{mediaId}",
        "GET /_matrix/client/v1/media/download/{serverName}/{mediaId}/{fileName}",
        "GET /_matrix/client/v1/media/thumbnail/{serverName}/{mediaId}",
        "GET /_matrix/client/v1/media/config",
        "GET /_matrix/media/v3/config",
    )
