"""Presence over HTTP on both databases: PUT/GET /presence/{userId}/status, /sync's
``presence`` section (initial, incremental, long-poll woken), ``set_presence``, the
timers (idle, offline), the switch that turns it off, and the attacker's side (others'
presence, users one shares no room with, bad input).  Responses are validated against the
spec's OpenAPI when the run has it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import select

from homeserver.config.model import PresenceSettings
from homeserver.storage.schema import presence as presence_table
from tests.homeserver.client import User
from tests.homeserver.conftest import Node, running_node
from tests.homeserver.openapi import ClientServerSpec, ValidatingClient

V3 = "/_matrix/client/v3"


def status(user_id: str) -> str:
    return f"{V3}/presence/{quote(user_id)}/status"


def presence_events(synced: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["sender"]: e["content"] for e in synced["presence"]["events"]}


async def _node(tmp_path: Path, db_url: str, settings: PresenceSettings) -> AsyncIterator[Node]:
    async with running_node(tmp_path / "node", db_url, presence=settings) as started:
        yield started


@pytest.fixture
async def quick(tmp_path: Path, db_url: str) -> AsyncIterator[Node]:
    """A node whose presence timers run in a second or two."""
    settings = PresenceSettings(
        last_active_granularity_ms=500, sync_online_timeout_ms=2000, idle_timeout_ms=1000
    )
    async for node in _node(tmp_path, db_url, settings):
        yield node


@pytest.fixture
async def disabled(tmp_path: Path, db_url: str) -> AsyncIterator[Node]:
    async for node in _node(tmp_path, db_url, PresenceSettings(enabled=False)):
        yield node


async def _three(c: ValidatingClient) -> tuple[User, User, User, str]:
    alice = await c.register("alice")
    bob = await c.register("bob")
    mallory = await c.register("mallory")
    room_id = await alice.create_room(preset="public_chat")
    await bob.join(room_id)
    return alice, bob, mallory, room_id


async def test_presence_status_and_sync(node: Node, openapi: ClientServerSpec | None) -> None:
    async with ValidatingClient(node.base_url, openapi) as c:
        alice, bob, mallory, _ = await _three(c)
        await alice.ok("PUT", status(alice.user_id), {"presence": "online", "status_msg": "巡回中"})
        mine = await alice.ok("GET", status(alice.user_id))
        assert mine["presence"] == "online" and mine["status_msg"] == "巡回中"
        assert mine["currently_active"] is True and 0 <= mine["last_active_ago"] < 10_000
        # Bob shares a room with Alice: he sees it, in GET and in his initial /sync.
        seen = await bob.ok("GET", status(alice.user_id))
        assert seen["presence"] == "online" and seen["status_msg"] == "巡回中"
        first = await bob.sync(set_presence="offline")
        assert presence_events(first)[alice.user_id]["status_msg"] == "巡回中"

        # A long-polling sync is woken by a change and gets only the change.
        waiting = asyncio.create_task(bob.sync(first["next_batch"], timeout=10_000,
                                               set_presence="offline"))  # fmt: skip
        await asyncio.sleep(0.3)
        await alice.ok("PUT", status(alice.user_id), {"presence": "unavailable"})
        woken = await asyncio.wait_for(waiting, 5)
        changed = presence_events(woken)
        assert list(changed) == [alice.user_id]
        assert changed[alice.user_id]["presence"] == "unavailable"
        assert "status_msg" not in changed[alice.user_id]  # a PUT without one clears it

        # Syncs that change nothing write nothing (no stream position is used).
        await alice.sync(set_presence="unavailable")
        before = node.services.db.stream.current
        for _ in range(3):
            await alice.sync(set_presence="unavailable")
        assert node.services.db.stream.current == before
        again = await bob.sync(woken["next_batch"], set_presence="offline")
        assert presence_events(again) == {}
        # A filter without presence gets none.
        no_presence = '{"presence": {"not_types": ["*"]}}'
        assert presence_events(await bob.sync(filter=no_presence, set_presence="offline")) == {}
        # Sending a message is activity: an idle user is online again (as Synapse).
        room_id = (await alice.ok("GET", f"{V3}/joined_rooms"))["joined_rooms"][0]
        await alice.send(room_id, "戻りました")
        assert (await bob.ok("GET", status(alice.user_id)))["presence"] == "online"
        # set_presence=online on a sync makes an unavailable user online again too.
        await alice.ok("PUT", status(alice.user_id), {"presence": "unavailable"})
        await alice.sync()
        assert (await bob.ok("GET", status(alice.user_id)))["presence"] == "online"
        # Someone joining a room gets the presence of its members in their next sync, and
        # its members get theirs (as Synapse's newly joined users), unchanged as it is.
        carol = await c.register("carol")
        await carol.ok("PUT", status(carol.user_id), {"presence": "online"})
        carol_since = (await carol.sync())["next_batch"]
        bob_since = (await bob.sync(set_presence="offline"))["next_batch"]
        await carol.join(room_id)
        joined = presence_events(await carol.sync(carol_since))
        assert joined[alice.user_id]["presence"] == "online"
        assert presence_events(await bob.sync(bob_since, set_presence="offline"))[carol.user_id]

        # The attacker's side.
        hidden = await mallory.request("GET", status(alice.user_id))
        assert (hidden.status, hidden.body["errcode"]) == (403, "M_FORBIDDEN")
        assert presence_events(await mallory.sync()).keys() <= {mallory.user_id}
        theirs = await mallory.request("PUT", status(alice.user_id), {"presence": "offline"})
        assert (theirs.status, theirs.body["errcode"]) == (403, "M_FORBIDDEN")
        assert (await bob.ok("GET", status(alice.user_id)))["presence"] == "online"
        for body in ({"presence": "asleep"}, {"presence": 1}, {},
                     {"presence": "online", "status_msg": 5},
                     {"presence": "online", "status_msg": "x" * 5000}):  # fmt: skip
            bad = await mallory.request("PUT", status(mallory.user_id), body)
            assert bad.status == 400 and bad.body["errcode"].startswith("M_"), body
        bad_sync = await mallory.request("GET", f"{V3}/sync", params={"set_presence": "away"})
        assert bad_sync.status == 400
        unknown = await mallory.request("GET", status("@nobody:elsewhere.example"))
        assert unknown.status == 403
        c.check(
            "GET /_matrix/client/v3/presence/{userId}/status",
            "PUT /_matrix/client/v3/presence/{userId}/status",
            "GET /_matrix/client/v3/sync",
        )


async def test_presence_timers(quick: Node, openapi: ClientServerSpec | None) -> None:
    """Online -> unavailable after the idle timeout; offline once syncs stop."""
    presence = quick.services.presence
    async with ValidatingClient(quick.base_url, openapi) as c:
        alice, bob, _, _ = await _three(c)
        await alice.ok("PUT", status(alice.user_id), {"presence": "online"})
        synced = await bob.sync(set_presence="offline")
        assert presence_events(synced)[alice.user_id]["currently_active"] is True
        await asyncio.sleep(1.2)
        await presence.check_timeouts()
        idle = await bob.ok("GET", status(alice.user_id))
        assert idle["presence"] == "unavailable" and idle["last_active_ago"] >= 1000
        synced = await bob.sync(synced["next_batch"], set_presence="offline")
        assert presence_events(synced)[alice.user_id]["presence"] == "unavailable"
        await asyncio.sleep(1.0)
        await presence.check_timeouts()
        assert (await bob.ok("GET", status(alice.user_id)))["presence"] == "offline"
        # A user whose sync is running does not go offline.
        await bob.ok("PUT", status(bob.user_id), {"presence": "online"})
        token = (await bob.sync(set_presence="offline"))["next_batch"]
        long_poll = asyncio.create_task(bob.sync(token, timeout=3500))
        await asyncio.sleep(2.5)
        await presence.check_timeouts()
        assert (await alice.ok("GET", status(bob.user_id)))["presence"] != "offline"
        # It went idle meanwhile (no activity for a second), which woke the long poll.
        assert presence_events(await long_poll)[bob.user_id]["presence"] == "unavailable"


async def test_presence_turned_off(disabled: Node, openapi: ClientServerSpec | None) -> None:
    async with ValidatingClient(disabled.base_url, openapi) as c:
        alice, bob, mallory, _ = await _three(c)
        assert await alice.ok("PUT", status(alice.user_id), {"presence": "online"}) == {}
        assert await bob.ok("GET", status(alice.user_id)) == {"presence": "offline"}
        assert await mallory.ok("GET", status(alice.user_id)) == {"presence": "offline"}
        await alice.sync()
        assert (await bob.sync())["presence"] == {"events": []}
        still = await alice.request("PUT", status(bob.user_id), {"presence": "online"})
        assert still.status == 403
        async with disabled.services.db.read() as conn:
            assert (await conn.execute(select(presence_table))).all() == []
