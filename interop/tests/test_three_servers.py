"""Three servers in one room: concurrent state changes converge to one current state."""

from __future__ import annotations

import asyncio

from interop.client import Client, MatrixError
from interop.tests.support import (
    Cluster,
    Users,
    power_levels,
    server_of,
    set_user_level,
    shared_room,
    state_map,
    wait_user_level,
)
from interop.wait import wait_until


async def test_concurrent_state_changes_converge(cluster: Cluster, users: Users) -> None:
    alice = await users.on(cluster.a, "alice")
    bob = await users.on(cluster.b, "bob")
    carol = await users.on(cluster.c, "carol")
    everyone = [alice, bob, carol]
    room_id = await shared_room(alice, [bob, carol])
    await set_user_level(alice, room_id, bob.user_id, 100)
    for observer in everyone:
        await wait_user_level(observer, room_id, bob.user_id, 100)

    # A and B change the same state at the same moment, each from its own current view.
    base_a = await power_levels(alice, room_id)
    base_b = await power_levels(bob, room_id)
    levels_a = {**base_a, "users": {**base_a["users"], carol.user_id: 50}}
    levels_b = {**base_b, "events_default": 10, "users": {**base_b["users"], carol.user_id: 10}}
    sent = await asyncio.gather(
        alice.send_state(room_id, "m.room.topic", {"topic": "topic from A"}),
        alice.send_state(room_id, "m.room.name", {"name": "name from A"}),
        alice.send_state(room_id, "m.room.power_levels", levels_a),
        bob.send_state(room_id, "m.room.topic", {"topic": "topic from B"}),
        bob.send_state(room_id, "m.room.name", {"name": "name from B"}),
        bob.send_state(room_id, "m.room.power_levels", levels_b),
    )

    async def converged() -> dict[tuple[str, str], str] | None:
        # Every server has every concurrent event...
        for observer in everyone:
            for n, event_id in enumerate(sent):
                try:
                    await observer.get_event(room_id, event_id)
                except MatrixError as e:
                    # Name who lacks which event, so a timeout says where delivery stopped.
                    raise MatrixError(
                        "GET", f"event sent[{n}] {event_id} on {observer.user_id}", e.status, e.body
                    ) from e
        # ...and all three resolve the room to the same current state.
        maps = [state_map(await observer.state(room_id)) for observer in everyone]
        return maps[0] if maps[0] == maps[1] == maps[2] else None

    state = await wait_until(converged, "A, B and C to agree on the room's current state")

    async def content(client: Client, event_type: str) -> object:
        return await client.state_event(room_id, event_type)

    topics = {str(await content(c, "m.room.topic")) for c in everyone}
    assert len(topics) == 1, topics
    assert state[("m.room.topic", "")] in (sent[0], sent[3])
    assert state[("m.room.name", "")] in (sent[1], sent[4])
    assert state[("m.room.power_levels", "")] in (sent[2], sent[5])

    # The room still works after the fork: a message from C reaches A and B.
    await carol.send_text(room_id, f"converged on {server_of(carol)}")
    for observer in (alice, bob):

        async def has_it(observer: Client = observer) -> bool:
            chunk = (await observer.messages(room_id, limit=10))["chunk"]
            return any(
                e.get("content", {}).get("body", "").startswith("converged on") for e in chunk
            )

        await wait_until(has_it, f"{observer.user_id} to see C's message after the fork")
