"""Robustness: hundreds of malformed requests, and the node must answer every one properly.

A seeded generator (fixed seed, bounded count) sends invalid JSON, wrong types in every
field of the main endpoints, huge and deeply nested bodies, bad tokens, unknown rooms,
users and events, forbidden actions, odd path segments, wrong methods and bad query
parameters.  The invariants: never a 5xx; every 4xx is Matrix JSON with an ``errcode``
and an ``error``, and the status is the one that errcode means.  Where the right answer
is known exactly (bad token, bad JSON, oversized body, wrong method) it is asserted exactly.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import random
import re
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from PIL import Image
from yarl import URL

from tests.homeserver.client import Client, User
from tests.homeserver.conftest import Node

V3 = "/_matrix/client/v3"
SEED = 20261122
#: Routes that fetch another server's media when the path names one.
REMOTE_MEDIA = re.compile(r"/_matrix/(client/v1/media|media/v3|media/r0)/(download|thumbnail)/")

#: The statuses each errcode may come with.
ERRCODE_STATUS: dict[str, set[int]] = {
    "M_NOT_JSON": {400},
    "M_BAD_JSON": {400},
    "M_MISSING_PARAM": {400},
    "M_INVALID_PARAM": {400},
    "M_INVALID_USERNAME": {400},
    "M_USER_IN_USE": {400},
    "M_ROOM_IN_USE": {400},
    "M_BAD_ALIAS": {400},
    "M_UNSUPPORTED_ROOM_VERSION": {400},
    "M_MISSING_TOKEN": {401},
    "M_UNAUTHORIZED": {401},  # user-interactive auth: the flows
    "M_UNKNOWN_TOKEN": {401},
    # 401 only inside user-interactive auth; 400 as Synapse answers 3PID changes when they
    # are off (and createRoom's invite_3pid, which needs an identity server)
    "M_FORBIDDEN": {400, 401, 403},
    "M_THREEPID_MEDIUM_NOT_SUPPORTED": {400},
    "M_SERVER_NOT_TRUSTED": {400},
    "M_USER_LOCKED": {401},
    "M_USER_SUSPENDED": {403},
    "M_GUEST_ACCESS_FORBIDDEN": {403},
    "M_USER_DEACTIVATED": {403},
    "M_NOT_FOUND": {404},
    "M_UNRECOGNIZED": {400, 404, 405},  # 400 for a known but unsupported feature, as Synapse
    "M_TOO_LARGE": {400, 413},  # 400 for an over-long field, as Synapse does
    "M_PROFILE_TOO_LARGE": {400},  # a profile of 64 KiB or more (Matrix 1.16)
    "M_KEY_TOO_LARGE": {400},
    "M_LIMIT_EXCEEDED": {429},
    "M_CANNOT_OVERWRITE_MEDIA": {409},
    "M_UNKNOWN": {400, 403, 404, 409, 502},  # 502: another server's media (REMOTE_MEDIA)
}

WRONG_VALUES: list[Any] = [
    None,
    0,
    -1,
    1.5,
    True,
    "",
    "x" * 70_000,
    "\u0000",
    "日本語",
    [],
    [1, "a"],
    {},
    {"a": {"b": []}},
    2**70,
    -(2**63),
]

GARBAGE_SEGMENTS = [
    "%00",
    "%ff%fe",
    "..",
    "%2F",
    "%2e%2e",
    quote("日本語"),
    "x" * 3000,
    "!nope:example.org",
    quote("!nope:example.org", safe=""),
    "$nope",
    "@nope:example.org",
    "%25",
    "%20",
    "%23",
    "%",
    "a%zzb",
    quote("\u202e\u0000"),
]

QUERY_GARBAGE = [
    "-1",
    "abc",
    "",
    "99999999999999999999999",
    "1e3",
    "1.5",
    "{",
    "[]",
    "null",
    '{"room":{"timeline":{"limit":"x"}}}',
    '{"room":[]}',
    '{"room":{"rooms":"!a"}}',
    '{"room":{"timeline":{"types":[1]}}}',
    '{"room":{"state":{"lazy_load_members":"yes"}}}',
    "s-1_0",
    "s1_2_3",
    "s1",
    "t",
    "t-5",
    "t99999999999999",
    "s99999999999999_0",
    "t99999999999999999999999",
    "s99999999999999999999999_0",
    "s1_99999999999999999999",
    "²",
    "t²",
    "s1_²",
    "١٢",
    "日本語",
    "\u0000",
]


@dataclasses.dataclass
class Endpoint:
    method: str
    path: str  # with {room}, {event}, {alice}, {txn}, {alias} placeholders
    body: dict[str, Any] | None = None  # a valid body; its fields (dotted) are mutated
    query: dict[str, str] | None = None  # valid query parameters; each is mutated
    auth: bool = True
    as_user: str = "alice"


ENDPOINTS = [
    Endpoint(
        "POST",
        "/createRoom",
        {
            "name": "n",
            "topic": "t",
            "preset": "private_chat",
            "visibility": "private",
            "invite": ["{bob}"],
            "room_alias_name": "a{txn}",
            "initial_state": [
                {"type": "m.room.guest_access", "content": {"guest_access": "forbidden"}}
            ],
            "creation_content": {"m.federate": True},
            "power_level_content_override": {"events_default": 0},
            "room_version": "12",
            "is_direct": False,
        },
    ),
    Endpoint("PUT", "/rooms/{room}/send/m.room.message/{txn}", {"msgtype": "m.text", "body": "b"}),
    Endpoint("PUT", "/rooms/{room}/state/m.room.topic/", {"topic": "t"}),
    Endpoint(
        "PUT", "/rooms/{room}/state/m.room.canonical_alias", {"alias": "{alias}", "alt_aliases": []}
    ),
    Endpoint(
        "PUT", "/rooms/{room}/state/m.room.power_levels", {"users": {"{alice}": 100}, "ban": 50}
    ),
    Endpoint("POST", "/rooms/{room}/invite", {"user_id": "{carol}", "reason": "r"}),
    Endpoint("POST", "/rooms/{room}/kick", {"user_id": "{carol}", "reason": "r"}),
    Endpoint("POST", "/rooms/{room}/ban", {"user_id": "{carol}", "reason": "r"}),
    Endpoint("POST", "/rooms/{room}/unban", {"user_id": "{carol}", "reason": "r"}),
    Endpoint("POST", "/join/{room}", {"reason": "r"}, as_user="bob"),
    Endpoint("POST", "/rooms/{scratch}/leave", {"reason": "r"}, as_user="bob"),
    Endpoint("PUT", "/rooms/{room}/redact/{event}/{txn}", {"reason": "r"}),
    Endpoint("POST", "/rooms/{room}/receipt/m.read/{event}", {"thread_id": "main"}),
    Endpoint(
        "POST", "/rooms/{room}/read_markers", {"m.fully_read": "{event}", "m.read": "{event}"}
    ),
    Endpoint("PUT", "/rooms/{room}/typing/{alice}", {"typing": True, "timeout": 1000}),
    Endpoint("PUT", "/user/{alice}/account_data/org.example.x", {"a": 1}),
    Endpoint("PUT", "/user/{alice}/rooms/{room}/account_data/org.example.x", {"a": 1}),
    Endpoint(
        "POST",
        "/user/{alice}/filter",
        {
            "event_format": "client",
            "account_data": {"not_types": ["*"]},
            "room": {
                "rooms": ["{room}"],
                "include_leave": True,
                "timeline": {"limit": 5, "types": ["m.room.message"]},
                "state": {"lazy_load_members": True},
                "ephemeral": {"not_types": ["*"]},
            },
        },
    ),
    Endpoint("PUT", "/profile/{alice}/displayname", {"displayname": "名前"}),
    Endpoint("PUT", "/profile/{alice}/avatar_url", {"avatar_url": "mxc://x/y"}),
    Endpoint("POST", "/user_directory/search", {"search_term": "bob", "limit": 5}),
    Endpoint(
        "POST",
        "/search",
        {
            "search_categories": {
                "room_events": {
                    "search_term": "防災 x",
                    "keys": ["content.body"],
                    "order_by": "recent",
                    "filter": {"rooms": ["{room}"], "limit": 3, "senders": ["{alice}"]},
                    "event_context": {"before_limit": 1, "after_limit": 1, "include_profile": True},
                    "groupings": {"group_by": [{"key": "room_id"}]},
                    "include_state": True,
                }
            }
        },
    ),
    Endpoint(
        "POST",
        "/publicRooms",
        {"limit": 5, "since": "0", "filter": {"generic_search_term": "x"}, "server": "x"},
    ),
    Endpoint("PUT", "/directory/room/{alias}", {"room_id": "{room}"}),
    Endpoint("PUT", "/directory/list/room/{room}", {"visibility": "private"}),
    Endpoint(
        "POST",
        "/login",
        {
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": "alice"},
            "password": "correct horse",
            "device_id": "D{txn}",
            "initial_device_display_name": "d",
        },
        auth=False,
    ),
    Endpoint(
        "POST",
        "/register",
        {
            "username": "u{txn}",
            "password": "p",
            "auth": {"type": "m.login.dummy"},
            "device_id": "D",
            "initial_device_display_name": "d",
            "inhibit_login": False,
        },
        auth=False,
    ),
    Endpoint(
        "POST",
        "/account/password",
        {
            "new_password": "correct horse",
            "logout_devices": False,
            "auth": {"type": "m.login.password", "password": "wrong"},
        },
    ),
    Endpoint(
        "POST", "/account/deactivate", {"auth": {"type": "m.login.password", "password": "wrong"}}
    ),
    Endpoint("GET", "/sync", query={"timeout": "0", "full_state": "false"}),
    Endpoint("GET", "/sync", query={"timeout": "0", "since": "{since}"}),
    Endpoint("GET", "/sync", query={"timeout": "0", "filter": "{filter}"}),
    Endpoint(
        "GET",
        "/rooms/{room}/messages",
        query={"dir": "b", "limit": "5", "from": "{since}", "to": "t1", "filter": "{}"},
    ),
    Endpoint("GET", "/rooms/{room}/context/{event}", query={"limit": "5"}),
    Endpoint(
        "GET", "/rooms/{room}/members", query={"membership": "join", "not_membership": "leave"}
    ),
    Endpoint("GET", "/rooms/{room}/state/m.room.create/", query={"format": "event"}),
    Endpoint("GET", "/publicRooms", query={"limit": "5", "since": "0"}, auth=False),
    Endpoint("GET", "/register/available", query={"username": "free"}, auth=False),
    Endpoint("GET", "/user/{alice}/filter/{filter}"),
    Endpoint("GET", "/rooms/{room}/event/{event}"),
    Endpoint("GET", "/rooms/{room}/joined_members"),
    Endpoint("GET", "/rooms/{room}/state"),
    Endpoint("GET", "/rooms/{room}/aliases"),
    Endpoint("GET", "/profile/{alice}", auth=False),
    Endpoint("GET", "/directory/room/{alias}", auth=False),
    Endpoint("GET", "/user/{alice}/account_data/org.example.x"),
    Endpoint("GET", "/joined_rooms"),
    Endpoint("GET", "/account/whoami"),
    Endpoint("GET", "/capabilities"),
    Endpoint("POST", "/rooms/{room}/forget", {}, as_user="carol"),
    # Devices, keys, to-device, push rules, media.
    Endpoint("PUT", "/devices/{device}", {"display_name": "端末"}),
    Endpoint("GET", "/devices/{device}"),
    Endpoint("GET", "/devices"),
    Endpoint(
        "POST",
        "/delete_devices",
        {"devices": ["NOPE"], "auth": {"type": "m.login.password", "password": "wrong"}},
    ),
    Endpoint(
        "DELETE", "/devices/NOPE", {"auth": {"type": "m.login.password", "password": "wrong"}}
    ),
    Endpoint(
        "POST",
        "/keys/upload",
        {
            "device_keys": {
                "user_id": "{alice}",
                "device_id": "{device}",
                "algorithms": ["m.olm.v1.curve25519-aes-sha2"],
                "keys": {"curve25519:{device}": "Y3VydmU", "ed25519:{device}": "ZWQ"},
                "signatures": {"{alice}": {"ed25519:{device}": "c2ln"}},
            },
            "one_time_keys": {
                "signed_curve25519:{txn}": {
                    "key": "a2V5",
                    "signatures": {"{alice}": {"ed25519:{device}": "c2ln"}},
                }
            },
        },
    ),
    Endpoint("POST", "/keys/query", {"device_keys": {"{bob}": []}, "timeout": 10}),
    Endpoint(
        "POST",
        "/keys/claim",
        {"one_time_keys": {"{bob}": {"{device}": "signed_curve25519"}}, "timeout": 10},
    ),
    Endpoint("GET", "/keys/changes", query={"from": "s0_0", "to": "{since}"}),
    Endpoint(
        "POST",
        "/keys/device_signing/upload",
        {
            "master_key": {
                "user_id": "{alice}",
                "usage": ["master"],
                "keys": {"ed25519:bWFzdGVy": "bWFzdGVy"},
            }
        },
    ),
    Endpoint(
        "POST",
        "/keys/signatures/upload",
        {"{alice}": {"{device}": {"user_id": "{alice}", "signatures": {}}}},
    ),
    Endpoint("GET", "/room_keys/version"),
    Endpoint("PUT", "/sendToDevice/org.example.x/{txn}", {"messages": {"{bob}": {"*": {"a": 1}}}}),
    Endpoint("PUT", "/pushrules/global/content/r{txn}", {"pattern": "p", "actions": ["notify"]}),
    Endpoint("PUT", "/pushrules/global/override/.m.rule.master/enabled", {"enabled": False}),
    Endpoint("PUT", "/pushrules/global/underride/.m.rule.message/actions", {"actions": ["notify"]}),
    Endpoint("GET", "/pushrules/global/override/.m.rule.master"),
    Endpoint("DELETE", "/directory/room/{alias}"),
]


@dataclasses.dataclass
class World:
    node: Node
    session: aiohttp.ClientSession
    users: dict[str, User]
    values: dict[str, str]  # placeholder -> value (quoted for paths where needed)
    seen: Counter[tuple[int, str]] = dataclasses.field(default_factory=Counter)
    count: int = 0
    serial: int = 0

    def fill(self, text: str, *, in_path: bool) -> str:
        self.serial += 1
        values = {**self.values, "txn": f"f{self.serial}"}
        for key, value in values.items():
            text = text.replace("{" + key + "}", quote(value, safe="") if in_path else value)
        return text

    def fill_body(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.fill(value, in_path=False)
        if isinstance(value, list):
            return [self.fill_body(v) for v in value]
        if isinstance(value, dict):
            return {self.fill(k, in_path=False): self.fill_body(v) for k, v in value.items()}
        return value

    async def send(
        self,
        method: str,
        path: str,
        *,
        user: str | None = "alice",
        body: Any = None,
        raw: bytes | None = None,
        query: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        """One request with the path sent exactly as given (no re-encoding)."""
        all_headers = dict(headers or {})
        if user is not None:
            all_headers.setdefault("Authorization", f"Bearer {self.users[user].token}")
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        if data is not None:
            all_headers.setdefault("Content-Type", "application/json")
        url = URL(self.node.base_url + path, encoded=True)
        if query:
            url = url.update_query(query)
        async with self.session.request(method, url, data=data, headers=all_headers) as response:
            payload = await response.read()
            status = response.status
            content_type = response.headers.get("Content-Type", "")
        self.count += 1
        context = f"{method} {path[:200]} {str(query)[:200]} -> {status} {payload[:300]!r}"
        # Another server's media that cannot be fetched is 502, as Synapse answers it (the
        # garbage may name a server, "x", that does not exist); nothing else is a 5xx.
        assert status < 500 or (status == 502 and REMOTE_MEDIA.match(path)), context
        parsed: Any = None
        if content_type.startswith("application/json"):
            parsed = json.loads(payload)
        if status >= 400:
            assert isinstance(parsed, dict), context
            errcode, error = parsed.get("errcode"), parsed.get("error")
            assert isinstance(errcode, str) and re.fullmatch(r"M_[A-Z_]+", errcode), context
            assert isinstance(error, str), context
            if status == 401 and "flows" in parsed:
                # User-interactive auth: the failed stage's errcode rides along with the
                # flows (Synapse merges it in the same way).
                assert isinstance(parsed["flows"], list) and "session" in parsed, context
            else:
                assert status in ERRCODE_STATUS.get(errcode, set()), f"unexpected pair: {context}"
            self.seen[(status, errcode)] += 1
        return status, parsed


def set_at(body: dict[str, Any], where: tuple[str, ...], value: Any) -> dict[str, Any]:
    """A copy of ``body`` with the field at ``where`` (keys from the top) set to ``value``."""
    result: dict[str, Any] = json.loads(json.dumps(body))
    node = result
    *parents, last = where
    for key in parents:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[last] = value
    return result


def fields_of(body: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every field of ``body``, nested objects' fields too (keys may contain dots)."""
    fields: list[tuple[str, ...]] = []
    for key, value in body.items():
        fields.append((*prefix, key))
        if isinstance(value, dict) and value:
            fields.extend(fields_of(value, (*prefix, key)))
    return fields


@pytest.fixture
async def world(node: Node, client: Client) -> AsyncIterator[World]:
    alice = await client.register("alice")
    bob = await client.register("bob")
    carol = await client.register("carol")
    room_id = await alice.create_room(preset="public_chat")
    scratch = await alice.create_room(preset="public_chat")
    await bob.join(room_id)
    await bob.join(scratch)
    event_id = await alice.send(room_id, "target")
    alias = f"#fuzz:{node.server_name}"
    await alice.ok("PUT", f"{V3}/directory/room/{quote(alias, safe='')}", {"room_id": room_id})
    since = (await alice.sync())["next_batch"]
    filter_id = (await alice.ok("POST", f"{V3}/user/{quote(alice.user_id)}/filter", {"room": {}}))[
        "filter_id"
    ]
    async with aiohttp.ClientSession() as session:
        yield World(
            node,
            session,
            {"alice": alice, "bob": bob, "carol": carol},
            {
                "alice": alice.user_id,
                "bob": bob.user_id,
                "carol": carol.user_id,
                "room": room_id,
                "scratch": scratch,
                "event": event_id,
                "alias": alias,
                "since": since,
                "filter": filter_id,
                "device": alice.device_id,
            },
        )


def _user_of(endpoint: Endpoint) -> str | None:
    return endpoint.as_user if endpoint.auth else None


async def test_malformed_json_bodies(world: World) -> None:
    bodies: list[tuple[bytes, str]] = [
        (b"{", "M_NOT_JSON"),
        (b"{'a': 1}", "M_NOT_JSON"),
        (b'{"a": NaN}', "M_NOT_JSON"),
        (b'{"a": Infinity}', "M_NOT_JSON"),
        (b"\xff\xfe{}", "M_NOT_JSON"),
        (b'{"a": "\xc3"}', "M_NOT_JSON"),
        (b"[" * 10_000 + b"]" * 10_000, "M_NOT_JSON"),
        (b'{"a":' * 5_000 + b"1" + b"}" * 5_000, "M_NOT_JSON"),
        (b"[]", "M_BAD_JSON"),
        (b"null", "M_BAD_JSON"),
        (b'"text"', "M_BAD_JSON"),
        (b"1e999999", "M_BAD_JSON"),
        (b"12", "M_BAD_JSON"),
    ]
    with_bodies = [e for e in ENDPOINTS if e.body is not None and e.body]
    for endpoint in with_bodies:
        for raw, errcode in bodies:
            path = V3 + world.fill(endpoint.path, in_path=True)
            status, body = await world.send(endpoint.method, path, user=_user_of(endpoint), raw=raw)
            assert (status, body["errcode"]) == (400, errcode), (endpoint.path, raw[:20], body)
    assert world.count == len(with_bodies) * len(bodies)


async def test_oversized_and_deep_bodies(world: World) -> None:
    room = quote(world.values["room"], safe="")
    # Over the event size limit (64 KiB of content) and the general 1 MiB body limit.
    big_event = json.dumps({"msgtype": "m.text", "body": "x" * 70_000}).encode()
    status, body = await world.send(
        "PUT", f"{V3}/rooms/{room}/send/m.room.message/big", raw=big_event
    )
    assert (status, body["errcode"]) == (413, "M_TOO_LARGE")
    huge = json.dumps({"name": "x" * (2 * 1024 * 1024)}).encode()
    for path in ("/createRoom", f"/user/{quote(world.values['alice'])}/filter", "/login"):
        status, body = await world.send("POST", V3 + path, raw=huge)
        assert (status, body["errcode"]) == (413, "M_TOO_LARGE"), path
    # Deep but parseable nesting in event content: stored and served, or refused as 400.
    for depth in (10, 100, 300, 900):
        content: Any = "leaf"
        for _ in range(depth):
            content = {"d": content}
        status, _ = await world.send(
            "PUT",
            f"{V3}/rooms/{room}/send/m.room.message/deep{depth}",
            body={"msgtype": "m.text", "body": "deep", "nested": content},
        )
        assert status in (200, 400, 413), depth
    # Whatever was stored must still be servable.
    status, synced = await world.send("GET", f"{V3}/sync", query={"timeout": "0"})
    assert status == 200 and world.values["room"] in synced["rooms"]["join"]
    status, history = await world.send(
        "GET", f"{V3}/rooms/{room}/messages", query={"dir": "b", "limit": "20"}
    )
    assert status == 200 and history["chunk"]


async def test_wrong_types_in_every_field(world: World) -> None:
    rng = random.Random(SEED)
    cases: list[tuple[Endpoint, tuple[str, ...], Any]] = []
    for endpoint in ENDPOINTS:
        if not endpoint.body:
            continue
        for field in fields_of(endpoint.body):
            values = rng.sample(WRONG_VALUES, 6)
            cases.extend((endpoint, field, v) for v in values)
    for endpoint, field, value in cases:
        body = set_at(world.fill_body(endpoint.body), field, value)
        path = V3 + world.fill(endpoint.path, in_path=True)
        status, response = await world.send(
            endpoint.method, path, user=_user_of(endpoint), body=body
        )
        if status == 200 and endpoint.path == "/user/{alice}/filter":
            # A filter the server accepted must be usable by /sync.
            status, _ = await world.send(
                "GET", f"{V3}/sync", query={"timeout": "0", "filter": response["filter_id"]}
            )
            assert status == 200, (field, value)
    assert world.count >= 300
    # The wrong types were refused as such at least somewhere, not all swallowed.
    assert world.seen[(400, "M_BAD_JSON")] + world.seen[(400, "M_INVALID_PARAM")] > 50


async def test_bad_tokens(world: World) -> None:
    headers: list[tuple[dict[str, str], str]] = [
        ({"Authorization": ""}, "M_MISSING_TOKEN"),
        ({"Authorization": "Bearer"}, "M_MISSING_TOKEN"),
        ({"Authorization": "Bearer "}, "M_MISSING_TOKEN"),
        ({"Authorization": "Basic YTpi"}, "M_MISSING_TOKEN"),
        ({"Authorization": "Bearer garbage"}, "M_UNKNOWN_TOKEN"),
        ({"Authorization": "Bearer " + "x" * 8000}, "M_UNKNOWN_TOKEN"),
        ({"Authorization": "Bearer kai_" + "\t" * 3 + "x"}, "M_UNKNOWN_TOKEN"),
        ({"Authorization": "bearer garbage"}, "M_UNKNOWN_TOKEN"),
        ({"Authorization": "Bearer a b c"}, "M_UNKNOWN_TOKEN"),
    ]
    authed = [e for e in ENDPOINTS if e.auth]
    for endpoint in authed:
        for header, errcode in headers:
            path = V3 + world.fill(endpoint.path, in_path=True)
            status, body = await world.send(
                endpoint.method,
                path,
                user=None,
                body=world.fill_body(endpoint.body) if endpoint.body is not None else None,
                query={k: world.fill(v, in_path=False) for k, v in (endpoint.query or {}).items()},
                headers=header,
            )
            assert (status, body["errcode"]) == (401, errcode), (endpoint.path, header)
    # A logged-out token is unknown from then on.
    alice = world.users["alice"]
    status, login = await world.send(
        "POST",
        f"{V3}/login",
        user=None,
        body={"type": "m.login.password", "user": "alice", "password": "correct horse"},
    )
    assert status == 200
    token = {"Authorization": f"Bearer {login['access_token']}"}
    assert (await world.send("POST", f"{V3}/logout", user=None, body={}, headers=token))[0] == 200
    status, body = await world.send("GET", f"{V3}/sync", user=None, headers=token)
    assert (status, body["errcode"]) == (401, "M_UNKNOWN_TOKEN")
    assert alice.token != login["access_token"]


async def test_odd_paths_unknown_things_and_wrong_methods(world: World) -> None:
    rng = random.Random(SEED + 1)
    templates = [e for e in ENDPOINTS if "{" in e.path]
    for endpoint in templates:
        placeholders = re.findall(r"\{(\w+)\}", endpoint.path)
        for segment in rng.sample(GARBAGE_SEGMENTS, 8):
            target = rng.choice(placeholders)
            path = V3 + world.fill(endpoint.path.replace("{" + target + "}", segment), in_path=True)
            body = world.fill_body(endpoint.body) if endpoint.body is not None else None
            status, _ = await world.send(endpoint.method, path, user=_user_of(endpoint), body=body)
            assert status != 200 or target in ("txn", "alice") or endpoint.method != "GET", path
    # Unknown but well-formed rooms, events and users.
    room = quote(world.values["room"], safe="")
    unknown: list[tuple[str, str, Any, set[int]]] = [
        ("GET", f"/rooms/{quote('!nope:example.org')}/messages", None, {403, 404}),
        ("GET", f"/rooms/{quote('!nope:example.org')}/state", None, {403, 404}),
        (
            "PUT",
            f"/rooms/{quote('!nope:example.org')}/send/m.room.message/u1",
            {"msgtype": "m.text", "body": "x"},
            {403, 404},
        ),
        (
            "POST",
            f"/rooms/{quote('!nope:example.org')}/invite",
            {"user_id": world.values["bob"]},
            {403, 404},
        ),
        ("POST", f"/rooms/{quote('!nope:example.org')}/leave", {}, {403, 404}),
        ("GET", f"/rooms/{room}/event/{quote('$nope')}", None, {404}),
        ("GET", f"/rooms/{room}/context/{quote('$nope')}", None, {404}),
        ("PUT", f"/rooms/{room}/redact/{quote('$nope')}/u2", {}, {404}),
        ("POST", f"/rooms/{room}/receipt/m.read/{quote('$nope')}", {}, {404}),
        ("POST", f"/rooms/{room}/read_markers", {"m.fully_read": "$nope"}, {404}),
        ("POST", f"/rooms/{room}/invite", {"user_id": "@nobody:" + world.node.server_name}, {404}),
        ("GET", f"/profile/{quote('@nobody:example.org')}", None, {404}),
        ("GET", f"/user/{quote(world.values['alice'])}/filter/12345", None, {404}),
        ("GET", f"/user/{quote(world.values['alice'])}/filter/abc", None, {404}),
        ("GET", f"/user/{quote(world.values['bob'])}/filter/1", None, {403}),
        ("PUT", f"/user/{quote(world.values['bob'])}/account_data/x", {}, {403}),
        ("PUT", f"/rooms/{room}/typing/{quote(world.values['bob'])}", {"typing": True}, {403}),
        ("POST", f"/rooms/{room}/receipt/m.bogus/{quote(world.values['event'])}", {}, {400}),
        ("PUT", f"/user/{quote(world.values['alice'])}/account_data/m.fully_read", {}, {400}),
        # A membership through the state API that no endpoint does (a leave would be a kick).
        (
            "PUT",
            f"/rooms/{room}/state/m.room.member/{quote(world.values['bob'])}",
            {"membership": "knock"},
            {403},
        ),
    ]
    for method, path, body, statuses in unknown:
        status, _ = await world.send(method, V3 + path, body=body)
        assert status in statuses, (method, path, status)
    # Forbidden actions: bob has power 0.
    forbidden: list[tuple[str, str, Any]] = [
        ("POST", f"/rooms/{room}/kick", {"user_id": world.values["alice"]}),
        ("POST", f"/rooms/{room}/ban", {"user_id": world.values["alice"]}),
        (
            "PUT",
            f"/rooms/{room}/state/m.room.member/{quote(world.values['alice'])}",
            {"membership": "leave"},
        ),
        ("PUT", f"/rooms/{room}/state/m.room.power_levels", {"users": {world.values["bob"]: 100}}),
        ("PUT", f"/rooms/{room}/state/m.room.name", {"name": "bob's"}),
        ("PUT", f"/rooms/{room}/redact/{quote(world.values['event'])}/b1", {}),
        ("PUT", f"/directory/list/room/{room}", {"visibility": "public"}),
        ("DELETE", f"/directory/room/{quote(world.values['alias'], safe='')}", None),
    ]
    for method, path, body in forbidden:
        status, response = await world.send(method, V3 + path, user="bob", body=body)
        assert (status, response["errcode"]) == (403, "M_FORBIDDEN"), (method, path)
    # U+0000 cannot be stored in PostgreSQL text: refused up front, alike on both databases.
    nul_cases: list[tuple[str, str, Any, dict[str, str] | None, str]] = [
        ("GET", f"/rooms/{room}%00/state", None, None, "M_INVALID_PARAM"),
        ("GET", "/sync", None, {"since": "s1_0\x00"}, "M_INVALID_PARAM"),
        (
            "PUT",
            f"/profile/{quote(world.values['alice'])}/displayname",
            {"displayname": "a\x00"},
            None,
            "M_BAD_JSON",
        ),
        (
            "POST",
            "/login",
            {
                "type": "m.login.password",
                "user": "alice",
                "password": "correct horse",
                "device_id": "\x00",
            },
            None,
            "M_BAD_JSON",
        ),
        ("POST", f"/rooms/{room}/read_markers", {"m.read": "$\x00"}, None, "M_BAD_JSON"),
    ]
    for method, path, body, query, errcode in nul_cases:
        status, response = await world.send(method, V3 + path, body=body, query=query)
        assert (status, response["errcode"]) == (400, errcode), (method, path)
    # Content that does not fit its core event type, as Synapse's event validator refuses it.
    shapes: list[tuple[str, Any]] = [
        ("/send/m.room.message/s1", {"body": "no msgtype"}),
        ("/send/m.room.message/s2", {"msgtype": "m.text", "body": 5}),
        ("/send/m.room.message/s3", {}),
        ("/send/m.room.topic/s4", {"topic": "not a state event"}),
        ("/send/m.room.member/s5", {"membership": "join"}),
        ("/state/m.room.topic", {"topic": 5}),
        ("/state/m.room.name", {"name": ["x"]}),
        ("/state/m.room.power_levels", {"ban": "50"}),
        ("/state/m.room.power_levels", {"users": {world.values["alice"]: True}}),
        ("/state/m.room.power_levels", {"events": []}),
        ("/state/m.room.power_levels", {"kick": 1.5}),
    ]
    for rest, content in shapes:
        status, response = await world.send("PUT", f"{V3}/rooms/{room}{rest}", body=content)
        assert (status, response["errcode"]) == (400, "M_BAD_JSON"), (rest, content, response)
    for preset in ("", {}, [], "private"):
        status, response = await world.send("POST", f"{V3}/createRoom", body={"preset": preset})
        assert (status, response["errcode"]) == (400, "M_BAD_JSON"), preset
    # Wrong methods on known paths, and unknown paths.
    wrong = [
        ("DELETE", "/sync"),
        ("POST", "/account/whoami"),
        ("GET", "/createRoom"),
        ("PATCH", f"/rooms/{room}/send/m.room.message/x"),
        ("GET", f"/rooms/{room}/invite"),
        ("POST", "/_matrix/client/versions"),
        ("DELETE", "/_matrix/client/versions"),
    ]
    for method, path in wrong:
        full = path if path.startswith("/_matrix") else V3 + path
        status, body = await world.send(method, full)
        assert (status, body["errcode"]) == (405, "M_UNRECOGNIZED"), (method, path)
    for path in ("/_matrix/client/v3/nothing", "/_matrix/client/r0/sync", "/_matrix/nothing", "/"):
        status, body = await world.send("GET", path)
        assert (status, body["errcode"]) == (404, "M_UNRECOGNIZED"), path
    assert world.count > 200


async def test_concurrent_requests(world: World) -> None:
    """Bursts at once: retries of one transaction yield one event; parallel sends, state
    changes, receipts, joins/leaves and syncs all succeed, with no 5xx."""
    room = quote(world.values["room"], safe="")
    retry = f"{V3}/rooms/{room}/send/m.room.message/burst"
    body = {"msgtype": "m.text", "body": "once"}
    answers = await asyncio.gather(*(world.send("PUT", retry, body=body) for _ in range(15)))
    assert {status for status, _ in answers} == {200}
    assert len({answer["event_id"] for _, answer in answers}) == 1
    mixed = [
        *(
            world.send(
                "PUT",
                f"{V3}/rooms/{room}/send/m.room.message/p{i}",
                body={"msgtype": "m.text", "body": f"p{i}"},
            )
            for i in range(12)
        ),
        *(
            world.send("PUT", f"{V3}/rooms/{room}/state/org.example.s/{i}", body={"i": i})
            for i in range(6)
        ),
        *(world.send("GET", f"{V3}/sync", query={"timeout": "0"}) for _ in range(4)),
        *(
            world.send(
                "POST",
                f"{V3}/rooms/{room}/receipt/m.read/{quote(world.values['event'])}",
                body={},
                user=user,
            )
            for user in ("alice", "bob")
        ),
        world.send(
            "POST",
            f"{V3}/rooms/{quote(world.values['scratch'], safe='')}/leave",
            body={},
            user="bob",
        ),
        world.send("POST", f"{V3}/join/{room}", body={}, user="carol"),
    ]
    results = await asyncio.gather(*mixed)
    assert [status for status, _ in results] == [200] * len(mixed)
    sent_ids = [answer["event_id"] for _, answer in results[:18]]
    assert len(set(sent_ids)) == 18
    status, history = await world.send(
        "GET", f"{V3}/rooms/{room}/messages", query={"dir": "b", "limit": "100"}
    )
    assert status == 200
    seen = {e["event_id"] for e in history["chunk"]}
    assert set(sent_ids) <= seen
    bodies = [e["content"].get("body") for e in history["chunk"]]
    assert bodies.count("once") == 1


async def test_media_garbage(world: World) -> None:
    png = io.BytesIO()
    Image.new("RGB", (40, 30), (1, 2, 3)).save(png, format="PNG")
    status, uploaded = await world.send(
        "POST",
        "/_matrix/media/v3/upload",
        raw=png.getvalue(),
        headers={"Content-Type": "image/png"},
    )
    assert status == 200
    server, media_id = uploaded["content_uri"].removeprefix("mxc://").split("/")
    odd_uploads: list[tuple[bytes, str, dict[str, str] | None]] = [
        (b"", "application/octet-stream", None),
        (b"not an image", "image/png", None),
        (b"GIF89a" + b"\x00" * 20, "image/gif", None),
        (b"x", "", None),
        (b"x", "x" * 2000, None),
        (b"x", "text/plain", {"filename": "../../etc/passwd"}),
        (b"x", "text/plain", {"filename": "日本語 ファイル.txt"}),
        (b"x", "text/plain", {"filename": "a\r\nSet-Cookie: x=1"}),
        (b"x", "text/plain", {"filename": "x" * 5000}),
    ]
    for data, content_type, query in odd_uploads:
        status, body = await world.send(
            "POST",
            "/_matrix/media/v3/upload",
            raw=data,
            query=query,
            headers={"Content-Type": content_type},
        )
        if status == 200:
            got_server, got_id = body["content_uri"].removeprefix("mxc://").split("/")
            status, _ = await world.send(
                "GET", f"/_matrix/client/v1/media/download/{got_server}/{got_id}"
            )
            assert status == 200, (content_type, query)
            status, _ = await world.send(
                "GET",
                f"/_matrix/client/v1/media/thumbnail/{got_server}/{got_id}",
                query={"width": "16", "height": "16"},
            )
            assert status in (200, 400, 404), (content_type, query)
    thumbnail = f"/_matrix/client/v1/media/thumbnail/{server}/{media_id}"
    for params in (
        {"width": "-1", "height": "10"},
        {"width": "0", "height": "0"},
        {"width": "abc", "height": "10"},
        {"width": "999999999999", "height": "999999999999"},
        {"width": "10", "height": "10", "method": "x"},
        {"width": "10", "height": "10", "animated": "maybe"},
        {"width": "10", "height": "10", "timeout_ms": "-5"},
        {"height": "10"},
        {},
    ):
        status, _ = await world.send("GET", thumbnail, query=params)
        assert status in (200, 400), params
    for path in (
        f"/_matrix/client/v1/media/download/{server}/..",
        f"/_matrix/client/v1/media/download/{server}/%2E%2E%2F%2E%2E",
        f"/_matrix/client/v1/media/download/{server}/{'x' * 3000}",
        f"/_matrix/client/v1/media/download/{'x' * 300}/{media_id}",
        f"/_matrix/client/v1/media/download/{quote('日本.jp')}/{media_id}",
        f"/_matrix/client/v1/media/thumbnail/{server}/nope",
        f"/_matrix/media/v3/upload/{server}/{media_id}",
    ):
        method = "PUT" if path.startswith("/_matrix/media/v3/upload/") else "GET"
        status, _ = await world.send(method, path, raw=b"x" if method == "PUT" else None)
        assert status in (400, 403, 404, 409, 502), path
    # A file name in the path only names the download (Content-Disposition), nothing on disk.
    status, _ = await world.send(
        "GET", f"/_matrix/client/v1/media/download/{server}/{media_id}/{quote('../x')}"
    )
    assert status == 200
    status, body = await world.send(
        "GET", f"/_matrix/client/v1/media/download/{server}/{media_id}", user=None
    )
    assert (status, body["errcode"]) == (401, "M_MISSING_TOKEN")


async def test_every_route_survives_garbage(world: World) -> None:
    """Every route the node serves (found in its router, so new endpoints are covered as
    they appear) gets garbage path parameters, bodies and query strings, as a user and as
    an anonymous client: never a 5xx, always Matrix errors."""
    from homeserver.node.app import make_app

    rng = random.Random(SEED + 3)
    app = make_app(world.node.services)
    routes = sorted(
        {
            (route.method, route.resource.canonical)
            for route in app.router.routes()
            if route.resource is not None and route.method in ("GET", "PUT", "POST", "DELETE")
        }
    )
    assert len(routes) > 60
    fillers = [
        "x",
        "!nope:example.org",
        "@nope:example.org",
        "$nope",
        quote("日本"),
        "%25zz",
        "a" * 300,
    ]
    bodies: list[bytes | None] = [None, b"", b"{}", b"[]", b"{", b'{"a": {"b": [1, null]}}']
    for method, canonical in routes:
        if "/_matrix/federation/" in canonical or "/_matrix/key/" in canonical:
            continue  # signed server requests: the federation tests' business
        for _ in range(4):
            path = re.sub(r"\{[^}]+\}", lambda _: rng.choice(fillers), canonical)
            query = rng.choice(
                [None, {"limit": "-1"}, {"from": "x", "dir": "q"}, {"timeout": "abc"}, {"a": "b"}]
            )
            raw = rng.choice(bodies) if method != "GET" else None
            user = rng.choice(["alice", None])
            await world.send(method, path, user=user, raw=raw, query=query)
    assert world.count > 4 * 60


async def test_bad_query_parameters(world: World) -> None:
    rng = random.Random(SEED + 2)
    with_query = [e for e in ENDPOINTS if e.query]
    for endpoint in with_query:
        path = V3 + world.fill(endpoint.path, in_path=True)
        base = {k: world.fill(v, in_path=False) for k, v in (endpoint.query or {}).items()}
        for name in base:
            for value in rng.sample(QUERY_GARBAGE, 10):
                query = {**base, name: value}
                if endpoint.path == "/sync" and name == "timeout":
                    query.pop("since", None)  # no news to wait for would long-poll
                await world.send(endpoint.method, path, user=_user_of(endpoint), query=query)
    room = quote(world.values["room"], safe="")
    exact: list[tuple[str, dict[str, str]]] = [
        (f"/rooms/{room}/messages", {"dir": "x"}),
        (f"/rooms/{room}/messages", {"limit": "abc"}),
        (f"/rooms/{room}/messages", {"from": "garbage"}),
        (f"/rooms/{room}/messages", {"filter": "{"}),
        (f"/rooms/{room}/messages", {"filter": '{"types": [1]}'}),
        (f"/rooms/{room}/messages", {"filter": '{"not_senders": "@a:b"}'}),
        ("/sync", {"since": "garbage"}),
        ("/sync", {"filter": "{"}),
        ("/sync", {"timeout": "abc"}),
        (f"/rooms/{room}/context/{quote(world.values['event'])}", {"limit": "x"}),
    ]
    for path, query in exact:
        status, body = await world.send("GET", V3 + path, query=query)
        assert status == 400 and body["errcode"] in (
            "M_INVALID_PARAM",
            "M_BAD_JSON",
            "M_NOT_JSON",
        ), (
            path,
            query,
            body,
        )
    # limit=-1 and an empty dir are clamped or defaulted, never an error page.
    status, body = await world.send("GET", f"{V3}/rooms/{room}/messages", query={"limit": "-1"})
    assert status == 200 and len(body["chunk"]) >= 1
    assert world.count > 150
