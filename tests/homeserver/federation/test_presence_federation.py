"""Presence over federation: a local user's change goes to the servers sharing a room as an
``m.presence`` EDU and shows in their users' /sync; a hostile server cannot set the presence
of users who are not its own, nor store presence for users who share no room."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.homeserver.conftest import Node, running_node
from tests.homeserver.fakeserver import FakeServer
from tests.homeserver.federation.test_federation import eventually


def status(user_id: str) -> str:
    return f"/_matrix/client/v3/presence/{quote(user_id)}/status"


async def test_presence_goes_to_the_servers_in_the_room(pair: tuple[Node, Node]) -> None:
    a, b = pair
    async with a.client() as ca, b.client() as cb:
        alice = await ca.register("alice")
        bob = await cb.register("bob")
        room_id = await alice.create_room(preset="public_chat")
        # Set before B is in the room: B gets it when its first user joins.
        await alice.ok("PUT", status(alice.user_id), {"presence": "online", "status_msg": "庁舎"})
        since = (await bob.sync(set_presence="offline"))["next_batch"]
        await bob.ok("POST", f"/_matrix/client/v3/join/{room_id}", {},
                     params={"server_name": a.server_name})  # fmt: skip

        async def bob_sees_alice() -> dict[str, object] | None:
            synced = await bob.sync(since, timeout=1000, set_presence="offline")
            found = [e for e in synced["presence"]["events"] if e["sender"] == alice.user_id]
            return found[-1]["content"] if found else None

        seen = await eventually(bob_sees_alice)
        assert seen["presence"] == "online" and seen["status_msg"] == "庁舎"
        on_b = await bob.ok("GET", status(alice.user_id))
        assert on_b["presence"] == "online" and on_b["status_msg"] == "庁舎"
        # A change after the join goes too.
        await alice.ok("PUT", status(alice.user_id), {"presence": "online", "status_msg": "外出"})

        async def bob_sees_the_change() -> bool:
            found = await bob.ok("GET", status(alice.user_id))
            return found.get("status_msg") == "外出"

        await eventually(bob_sees_the_change)
        # And back: Bob's presence reaches Alice's server.
        await bob.ok("PUT", status(bob.user_id), {"presence": "unavailable"})

        async def alice_sees_bob() -> bool:
            found = await alice.ok("GET", status(bob.user_id))
            return bool(found["presence"] == "unavailable")

        await eventually(alice_sees_bob)


@pytest.fixture
async def fake_in_room(
    tmp_path: Path, db_url: str, caplog: pytest.LogCaptureFixture
) -> AsyncIterator[tuple[Node, FakeServer, str]]:
    caplog.set_level(logging.INFO)
    async with (
        running_node(tmp_path / "node", db_url, tls=True) as node,
        FakeServer(tmp_path / "fake") as fake,
    ):
        yield node, fake, node.server_name


async def test_hostile_presence_edus_are_ignored(
    fake_in_room: tuple[Node, FakeServer, str], caplog: pytest.LogCaptureFixture
) -> None:
    node, fake, _ = fake_in_room
    async with node.client() as c:
        alice = await c.register("alice")
        room_id = await alice.create_room(preset="public_chat")
        room = await fake.join(node, room_id)
        await alice.ok("PUT", status(alice.user_id), {"presence": "online", "status_msg": "本物"})
        stranger = fake.user("stranger")
        edus = [
            {"edu_type": "m.presence", "content": {"push": [
                {"user_id": alice.user_id, "presence": "offline"},  # not the fake's user
                {"user_id": stranger, "presence": "online"},  # shares no room
                {"user_id": room.user_id, "presence": "sleeping"},
                {"user_id": room.user_id, "presence": "online", "last_active_ago": -5},
                {"user_id": room.user_id, "presence": "online", "status_msg": ["x"]},
                "nope",
            ]}},
            {"edu_type": "m.presence", "content": {"push": "nope"}},
            {"edu_type": "m.presence", "content": []},
        ]  # fmt: skip
        answer = await fake.send_transaction(node, "p1", [], edus)
        assert answer.status == 200
        mine = await alice.ok("GET", status(alice.user_id))
        assert mine["presence"] == "online" and mine["status_msg"] == "本物"
        hidden = await alice.request("GET", status(stranger))
        assert hidden.status == 403
        assert (await alice.ok("GET", status(room.user_id)))["presence"] == "offline"
        assert "is not a user of" in caplog.text and "shares no room" in caplog.text
        # A well-formed one from the fake's own user in the room is taken.
        good = {"user_id": room.user_id, "presence": "online", "last_active_ago": 1000,
                "currently_active": True, "status_msg": "外から"}  # fmt: skip
        answer = await fake.send_transaction(
            node, "p2", [], [{"edu_type": "m.presence", "content": {"push": [good]}}]
        )
        assert answer.status == 200
        theirs = await alice.ok("GET", status(room.user_id))
        assert theirs["presence"] == "online" and theirs["status_msg"] == "外から"
        assert theirs["currently_active"] is True and theirs["last_active_ago"] >= 1000
