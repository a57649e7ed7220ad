"""An event the resident sends while our join's answer is still on its way is kept.

A fake server (real HTTPS on loopback) hosts a room.  When the node's ``/send_join``
arrives, the fake pushes a new message built on the node's join with ``/send`` first,
and answers the ``/send_join`` only a moment later: the node receives an event of a room
it does not know yet.  As Synapse queues such events, the node holds the event until the
join is stored and then accepts it, instead of dropping it as of an unknown room (which
would lose it: nothing later names it).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp import web

from federation import events as engine_events
from federation.room_versions import get as get_room_version
from homeserver.federation.joining import JoinsUnderway
from homeserver.node.app import close_services
from tests.homeserver.conftest import Node, start_node
from tests.homeserver.fakeserver import Answer, FakeServer

VERSION = get_room_version("11")


class FakeRoom:
    """A room of version 11 created on the fake server by ``@host``."""

    def __init__(self, fake: FakeServer) -> None:
        self.fake = fake
        self.room_id = f"!race:{fake.server_name}"
        self.host = fake.user("host")
        self.pdus: dict[str, dict[str, Any]] = {}
        self.head: list[str] = []
        self.depth = 0
        self.create = self.add("m.room.create", {"room_version": "11"}, "", [])
        self.member = self.add("m.room.member", {"membership": "join"}, self.host, [self.create])
        levels = {"users": {self.host: 100}}
        self.levels = self.add("m.room.power_levels", levels, "", [self.create, self.member])
        auth = [self.create, self.member, self.levels]
        self.rules = self.add("m.room.join_rules", {"join_rule": "public"}, "", auth)

    def add(
        self,
        event_type: str,
        content: dict[str, Any],
        state_key: str | None,
        auth: list[str],
        prev: list[str] | None = None,
    ) -> str:
        self.depth += 1
        event_id, pdu = engine_events.build_event(
            VERSION,
            event_type=event_type,
            sender=self.host,
            content=content,
            room_id=self.room_id,
            prev_events=self.head if prev is None else prev,
            auth_events=auth,
            depth=self.depth,
            origin_server_ts=int(time.time() * 1000),
            server_name=self.fake.server_name,
            key=self.fake.key,
            state_key=state_key,
        )
        self.pdus[event_id] = pdu
        self.head = [event_id]
        return event_id

    def state(self) -> list[dict[str, Any]]:
        return [self.pdus[e] for e in (self.create, self.member, self.levels, self.rules)]


@pytest.fixture
async def node(tmp_path: Path, db_url: str) -> AsyncIterator[Node]:
    node, runner = await start_node(tmp_path / "node", db_url, tls=True)
    try:
        yield node
    finally:
        await runner.cleanup()
        await close_services(node.services)


async def test_event_pushed_during_our_join_waits_for_it(node: Node, tmp_path: Path) -> None:
    fake = FakeServer(tmp_path / "fake")
    await fake.start()
    room = FakeRoom(fake)
    pushed: list[asyncio.Task[Answer]] = []
    message_ids: list[str] = []

    async def make_join(request: web.Request) -> web.StreamResponse:
        user_id = request.path.rsplit("/", 1)[1]
        template = {
            "type": "m.room.member",
            "room_id": room.room_id,
            "sender": user_id,
            "state_key": user_id,
            "content": {"membership": "join"},
            "prev_events": room.head,
            "auth_events": [room.create, room.levels, room.rules],
            "depth": room.depth + 1,
            "origin_server_ts": int(time.time() * 1000),
        }
        return web.json_response({"room_version": "11", "event": template})

    async def send_join(request: web.Request) -> web.StreamResponse:
        join = await request.json()
        join_id = engine_events.compute_event_id(join, VERSION)
        room.pdus[join_id] = join
        room.depth += 1
        # A message on top of the join, pushed before the join is answered.
        message_ids.append(
            room.add(
                "m.room.message",
                {"msgtype": "m.text", "body": "ようこそ"},
                None,
                [room.create, room.levels, room.member],
                prev=[join_id],
            )
        )
        pdu = room.pdus[message_ids[0]]
        pushed.append(asyncio.create_task(fake.send_transaction(node, "race1", [pdu])))
        await asyncio.sleep(0.5)
        assert not pushed[0].done(), "the pushed event must wait for the join"
        state = room.state()
        return web.json_response({"state": state, "auth_chain": state, "event": join})

    fake.handlers["/_matrix/federation/v1/make_join/"] = make_join
    fake.handlers["/_matrix/federation/v2/send_join/"] = send_join
    try:
        async with node.client() as client:
            bob = await client.register("bob")
            await bob.ok(
                "POST",
                f"/_matrix/client/v3/join/{quote(room.room_id)}",
                {},
                params={"server_name": fake.server_name},
            )
            answer = await asyncio.wait_for(pushed[0], 30)
            assert answer.status == 200, answer
            assert answer.body["pdus"] == {message_ids[0]: {}}, answer.body
            page = await bob.ok(
                "GET",
                f"/_matrix/client/v3/rooms/{quote(room.room_id)}/messages",
                params={"dir": "b", "limit": "10"},
            )
            bodies = [e.get("content", {}).get("body") for e in page["chunk"]]
            assert "ようこそ" in bodies
    finally:
        await fake.close()


async def test_a_join_underway_is_waited_for_then_forgotten() -> None:
    joins = JoinsUnderway()
    await joins.wait("!none:x", timeout_s=5)  # nothing underway: no wait
    with joins.joining("!r:x"):
        with joins.joining("!r:x"):  # two users joining at once
            pass
        assert joins.underway("!r:x")
        waiter = asyncio.create_task(joins.wait("!r:x"))
        await asyncio.sleep(0.05)
        assert not waiter.done()
    await asyncio.wait_for(waiter, 1)
    assert not joins.underway("!r:x")
    with joins.joining("!slow:x"):
        started = time.monotonic()
        await joins.wait("!slow:x", timeout_s=0.1)  # bounded
        assert time.monotonic() - started < 2
