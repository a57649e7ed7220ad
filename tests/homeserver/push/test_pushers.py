"""Pushers over real HTTP: GET /pushers and POST /pushers/set (validated against the spec's
OpenAPI), their deletion at logout, and the http pusher sending to a real push gateway
(aiohttp on loopback, allowed by ``push.allow_private_addresses``): the notification
body, event_id_only, retries after gateway errors, rejected pushkeys, and the SSRF guard."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp import web

from homeserver.config import PushSettings
from homeserver.node.app import build_services, close_services
from homeserver.push.gateway import GatewayClient, GatewayError
from tests.homeserver.client import User
from tests.homeserver.conftest import Node, free_port, running_node
from tests.homeserver.keyhelpers import V3
from tests.homeserver.openapi import ClientServerSpec, ValidatingClient

SET = f"{V3}/pushers/set"
_txn = itertools.count()


class Gateway:
    """A push gateway on loopback that records each notify request."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/_matrix/push/v1/notify"
        self.received: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        #: Responses to give, in order (status, JSON body or raw text); then 200
        #: {"rejected": []}.
        self.script: list[tuple[int, Any]] = []
        self.runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/_matrix/push/v1/notify", self._notify)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def _notify(self, request: web.Request) -> web.Response:
        await self.received.put(await request.json())
        status, body = self.script.pop(0) if self.script else (200, {"rejected": []})
        if isinstance(body, str):
            return web.Response(text=body, status=status)
        return web.json_response(body, status=status)

    async def next(self, timeout: float = 10.0) -> dict[str, Any]:
        return await asyncio.wait_for(self.received.get(), timeout)


@pytest.fixture
async def gateway() -> AsyncIterator[Gateway]:
    found = Gateway()
    await found.start()
    try:
        yield found
    finally:
        assert found.runner is not None
        await found.runner.cleanup()


@pytest.fixture
async def push_node(tmp_path: Path, db_url: str) -> AsyncIterator[Node]:
    async with running_node(
        tmp_path / "node", db_url, push=PushSettings(allow_private_addresses=True)
    ) as started:
        started.services.pushers.pool.initial_backoff_s = 0.2
        yield started


@pytest.fixture
async def pclient(
    push_node: Node, openapi: ClientServerSpec | None
) -> AsyncIterator[ValidatingClient]:
    c = ValidatingClient(push_node.base_url, openapi)
    try:
        yield c
    finally:
        await c.close()


def http_pusher(url: str, pushkey: str = "key-1", **extra: Any) -> dict[str, Any]:
    return {
        "kind": "http",
        "app_id": "jp.example.kairan.ios",
        "pushkey": pushkey,
        "app_display_name": "回覧",
        "device_display_name": "市役所のiPhone",
        "profile_tag": "tag",
        "lang": "ja",
        "data": {"url": url, "custom": "見る"},
        **extra,
    }


async def send(user: User, room_id: str, content: dict[str, Any]) -> str:
    path = f"{V3}/rooms/{quote(room_id, safe='')}/send/m.room.message/g{next(_txn)}"
    return str((await user.ok("PUT", path, content))["event_id"])


async def pushers(user: User) -> list[dict[str, Any]]:
    return list((await user.ok("GET", f"{V3}/pushers"))["pushers"])


async def test_set_list_update_and_delete(
    push_node: Node, pclient: ValidatingClient, gateway: Gateway
) -> None:
    alice = await pclient.register("alice")
    assert await pushers(alice) == []
    await alice.ok("POST", SET, http_pusher(gateway.url))
    listed = await pushers(alice)
    assert listed == [
        {
            "pushkey": "key-1",
            "kind": "http",
            "app_id": "jp.example.kairan.ios",
            "app_display_name": "回覧",
            "device_display_name": "市役所のiPhone",
            "profile_tag": "tag",
            "lang": "ja",
            "data": {"url": gateway.url, "custom": "見る"},
        }
    ]
    # The same app_id and pushkey updates in place.
    await alice.ok("POST", SET, http_pusher(gateway.url, lang="en"))
    assert [p["lang"] for p in await pushers(alice)] == ["en"]
    await alice.ok("POST", SET, http_pusher(gateway.url, pushkey="key-2"))
    assert sorted(p["pushkey"] for p in await pushers(alice)) == ["key-1", "key-2"]

    # Without append a pushkey moves to its new user; with append both keep it.
    bob = await pclient.register("bob")
    await bob.ok("POST", SET, http_pusher(gateway.url))
    assert [p["pushkey"] for p in await pushers(alice)] == ["key-2"]
    await alice.ok("POST", SET, http_pusher(gateway.url, pushkey="key-2x", append=True))
    await bob.ok("POST", SET, http_pusher(gateway.url, pushkey="key-2x", append=True))
    assert sorted(p["pushkey"] for p in await pushers(alice)) == ["key-2", "key-2x"]

    # kind null deletes (deleting what does not exist is no error).
    await alice.ok(
        "POST", SET, {"kind": None, "app_id": "jp.example.kairan.ios", "pushkey": "key-2"}
    )
    await alice.ok(
        "POST", SET, {"kind": None, "app_id": "jp.example.kairan.ios", "pushkey": "nothing"}
    )
    assert [p["pushkey"] for p in await pushers(alice)] == ["key-2x"]
    assert sorted(p["pushkey"] for p in await pushers(bob)) == ["key-1", "key-2x"]
    pclient.check("GET /_matrix/client/v3/pushers", "POST /_matrix/client/v3/pushers/set")


async def test_bad_requests(push_node: Node, pclient: ValidatingClient, gateway: Gateway) -> None:
    alice = await pclient.register("alice")
    good = http_pusher(gateway.url)
    without = {k: v for k, v in good.items() if k not in ("lang", "data")}
    cases: list[tuple[dict[str, Any], str]] = [
        ({k: v for k, v in good.items() if k != "kind"}, "M_MISSING_PARAM"),
        ({k: v for k, v in good.items() if k != "pushkey"}, "M_MISSING_PARAM"),
        (without, "M_MISSING_PARAM"),
        ({**good, "data": {"format": "event_id_only"}}, "M_MISSING_PARAM"),
        ({**good, "data": {"url": "https://push.example.jp/notify"}}, "M_INVALID_PARAM"),
        (
            {**good, "data": {"url": "ftp://push.example.jp/_matrix/push/v1/notify"}},
            "M_INVALID_PARAM",
        ),
        ({**good, "data": {"url": "not a url"}}, "M_INVALID_PARAM"),
        ({**good, "data": {"url": 5}}, "M_BAD_JSON"),
        ({**good, "kind": "sms"}, "M_INVALID_PARAM"),
        ({**good, "kind": 5}, "M_BAD_JSON"),
        ({**good, "data": "url"}, "M_BAD_JSON"),
        ({**good, "lang": None}, "M_BAD_JSON"),
        ({**good, "append": "yes"}, "M_BAD_JSON"),
        ({**good, "app_id": "a" * 65}, "M_INVALID_PARAM"),
        ({**good, "pushkey": "鍵" * 171}, "M_INVALID_PARAM"),  # 513 bytes
        ({"kind": None, "app_id": "x"}, "M_MISSING_PARAM"),
        (
            {**good, "kind": "email", "app_id": "m.email", "pushkey": "a@example.jp"},
            "M_THREEPID_NOT_FOUND",
        ),
    ]
    for body, errcode in cases:
        response = await alice.request("POST", SET, body)
        assert response.status == 400 and response.body["errcode"] == errcode, (body, response)
    not_json = await alice.request(
        "POST", SET, data=b"[1]", headers={"Content-Type": "application/json"}
    )
    assert not_json.status == 400 and not_json.body["errcode"] == "M_BAD_JSON"
    # A pushkey of exactly 512 bytes and an app_id of 64 characters are fine.
    await alice.ok("POST", SET, {**good, "app_id": "a" * 64, "pushkey": "鍵" * 170 + "ab"})
    assert len(await pushers(alice)) == 1
    unauthenticated = await pclient.request("GET", f"{V3}/pushers")
    assert unauthenticated.status == 401
    pclient.check("POST /_matrix/client/v3/pushers/set")


async def test_logout_deletes_the_devices_pushers(
    push_node: Node, pclient: ValidatingClient, gateway: Gateway
) -> None:
    alice = await pclient.register("alice")
    login = await pclient.ok(
        "POST",
        f"{V3}/login",
        {
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": "alice"},
            "password": "correct horse",
        },
    )
    phone = User(pclient, alice.user_id, login["access_token"], login["device_id"])
    await phone.ok("POST", SET, http_pusher(gateway.url, pushkey="phone"))
    await alice.ok("POST", SET, http_pusher(gateway.url, pushkey="desktop"))
    # Edited from the desktop, the phone's pusher stays the phone's.
    await alice.ok("POST", SET, http_pusher(gateway.url, pushkey="phone", lang="en"))
    await phone.ok("POST", f"{V3}/logout", {})
    assert [p["pushkey"] for p in await pushers(alice)] == ["desktop"]
    # logout/all deletes every device's pushers.
    await alice.ok("POST", f"{V3}/logout/all", {})
    async with push_node.services.db.read() as conn:
        from homeserver.storage import push as push_store

        assert await push_store.get_pushers(conn, alice.user_id) == []


async def three_in_a_room(pclient: ValidatingClient) -> tuple[User, User, str]:
    alice = await pclient.register("alice")
    bob = await pclient.register("bob")
    carol = await pclient.register("carol")
    room_id = await alice.create_room(preset="public_chat", name="防災会議")
    await bob.join(room_id)
    await carol.join(room_id)
    await bob.ok(
        "PUT",
        f"{V3}/profile/{quote(bob.user_id, safe='')}/displayname",
        {"displayname": "防災課 ボブ"},
    )
    return alice, bob, room_id


async def test_notifications_reach_the_gateway(
    push_node: Node, pclient: ValidatingClient, gateway: Gateway
) -> None:
    alice, bob, room_id = await three_in_a_room(pclient)
    await alice.ok("POST", SET, http_pusher(gateway.url))
    first = await send(bob, room_id, {"msgtype": "m.text", "body": "訓練のお知らせ"})
    got = await gateway.next()
    note = got["notification"]
    assert note == {
        "event_id": first,
        "room_id": room_id,
        "type": "m.room.message",
        "sender": bob.user_id,
        "sender_display_name": "防災課 ボブ",
        "room_name": "防災会議",
        "prio": "low",
        "content": {"msgtype": "m.text", "body": "訓練のお知らせ"},
        "counts": {"unread": 1},
        "devices": [
            {
                "app_id": "jp.example.kairan.ios",
                "pushkey": "key-1",
                "pushkey_ts": note["devices"][0]["pushkey_ts"],
                "data": {"custom": "見る"},
            }
        ],
    }
    assert (
        isinstance(note["devices"][0]["pushkey_ts"], int)
        and note["devices"][0]["pushkey_ts"] > 1_700_000_000
    )

    # A mention is pushed with its tweaks and high priority; the unread count grows.
    mention = await send(
        bob,
        room_id,
        {"msgtype": "m.text", "body": "Alice!", "m.mentions": {"user_ids": [alice.user_id]}},
    )
    note = (await gateway.next())["notification"]
    assert note["event_id"] == mention and note["prio"] == "high"
    assert note["counts"] == {"unread": 2}
    assert note["devices"][0]["tweaks"] == {"sound": "default", "highlight": True}

    # Notices are not pushed; the user's own messages neither.
    await send(bob, room_id, {"msgtype": "m.notice", "body": "bot"})
    await send(alice, room_id, {"msgtype": "m.text", "body": "mine"})
    last = await send(bob, room_id, {"msgtype": "m.text", "body": "next"})
    assert (await gateway.next())["notification"]["event_id"] == last

    # event_id_only: just the IDs, priority, counts and the device (no tweaks).
    await alice.ok(
        "POST", SET, http_pusher(gateway.url, data={"url": gateway.url, "format": "event_id_only"})
    )
    await send(
        bob,
        room_id,
        {"msgtype": "m.text", "body": "秘密", "m.mentions": {"user_ids": [alice.user_id]}},
    )
    note = (await gateway.next())["notification"]
    assert set(note) == {"event_id", "room_id", "prio", "counts", "devices"}
    assert note["counts"] == {"unread": 4} and note["prio"] == "high"
    assert note["devices"][0]["data"] == {"format": "event_id_only"}
    assert "tweaks" not in note["devices"][0]
    assert gateway.received.empty()


async def test_retries_with_backoff_and_rejected_pushkeys(
    push_node: Node, pclient: ValidatingClient, gateway: Gateway
) -> None:
    alice, bob, room_id = await three_in_a_room(pclient)
    await alice.ok("POST", SET, http_pusher(gateway.url))
    # The gateway fails twice (an error status, then not JSON), then accepts.
    gateway.script = [(500, {"error": "down"}), (200, "not json")]
    started = asyncio.get_running_loop().time()
    event_id = await send(bob, room_id, {"msgtype": "m.text", "body": "届くまで"})
    attempts = [await gateway.next() for _ in range(3)]
    assert [a["notification"]["event_id"] for a in attempts] == [event_id] * 3
    # Backoff: 0.2 s, then 0.4 s (the test node's initial backoff is 0.2 s).
    assert asyncio.get_running_loop().time() - started >= 0.6
    # The progress is stored: a later event is pushed once.
    second = await send(bob, room_id, {"msgtype": "m.text", "body": "次"})
    assert (await gateway.next())["notification"]["event_id"] == second

    # A rejected pushkey deletes its pusher.
    gateway.script = [(200, {"rejected": ["key-1"]})]
    await send(bob, room_id, {"msgtype": "m.text", "body": "最後"})
    await gateway.next()
    for _ in range(50):
        if not await pushers(alice):
            break
        await asyncio.sleep(0.1)
    assert await pushers(alice) == []
    await send(bob, room_id, {"msgtype": "m.text", "body": "届かない"})
    await asyncio.sleep(0.5)
    assert gateway.received.empty()


async def test_read_notifications_are_not_pushed_and_pushers_resume(
    tmp_path: Path, db_url: str, gateway: Gateway, openapi: ClientServerSpec | None
) -> None:
    async with running_node(
        tmp_path / "node", db_url, push=PushSettings(allow_private_addresses=True)
    ) as node:
        client = ValidatingClient(node.base_url, openapi)
        alice, bob, room_id = await three_in_a_room(client)
        node.services.pushers.pool.initial_backoff_s = 30.0
        await alice.ok("POST", SET, http_pusher(gateway.url))
        gateway.script = [(503, {})]  # down: the next try would be in 30 s
        read = await send(bob, room_id, {"msgtype": "m.text", "body": "読んだ"})
        await gateway.next()
        await alice.ok(
            "POST",
            f"{V3}/rooms/{quote(room_id, safe='')}/receipt/m.read/{quote(read, safe='')}",
            {},
        )
        unread = await send(bob, room_id, {"msgtype": "m.text", "body": "未読"})
    # A restarted node's pusher resumes: the read message is not pushed, the unread one is.
    assert gateway.received.empty()
    services = await build_services(node.services.config, fast_passwords=True)
    try:
        await services.pushers.pool.start()
        note = (await gateway.next())["notification"]
        assert note["event_id"] == unread and note["counts"] == {"unread": 1}
    finally:
        await close_services(services)
        await client.close()


async def test_gateways_on_private_addresses_are_refused_by_default(gateway: Gateway) -> None:
    guarded = GatewayClient(allow_private_addresses=False)
    try:
        for url in (
            gateway.url,
            gateway.url.replace("127.0.0.1", "localhost"),
            "http://10.1.2.3/_matrix/push/v1/notify",
            "http://[::1]:1/_matrix/push/v1/notify",
        ):
            with pytest.raises(GatewayError, match="private or loopback"):
                await guarded.post(url, {"notification": {"devices": []}})
        with pytest.raises(GatewayError, match="path"):
            await guarded.post("http://127.0.0.1/other", {})
    finally:
        await guarded.close()
    assert gateway.received.empty()
    allowed = GatewayClient(allow_private_addresses=True)
    try:
        assert await allowed.post(gateway.url, {"notification": {"devices": []}}) == []
        assert await gateway.next() == {"notification": {"devices": []}}
    finally:
        await allowed.close()
