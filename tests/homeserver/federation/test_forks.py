"""The room's current state after concurrent branches does not depend on arrival order.

Two users of a fake server (real HTTPS on loopback), both at power 100, change the topic,
the name and the power levels on two branches that cross, as two servers' users did in
the interop suite's three-server scenario.  The node receives the events one transaction
at a time.  After each, its current state must be the resolution of the states after its
forward extremities, as Synapse computes it: resolving the old current state with the new
event's state instead (state resolution is not associative) made one server settle on
another name than the other two, for good.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from tests.homeserver.federation import test_federation_hostile
from tests.homeserver.federation.test_federation_hostile import Env, no_server_errors

env = test_federation_hostile.env  # the fixture: a fake server joined to alice's room


async def resolved_extremities(env: Env) -> dict[tuple[str, str], str]:
    """The resolution of the states after the room's forward extremities."""
    services = env.node.services
    room = await services.rooms.room(env.room_id)
    assert room is not None
    events = await services.rooms.get_events(room.extremities)
    states = []
    for event_id in room.extremities:
        group = events[event_id].state_group
        assert group is not None
        async with services.rooms.db.read() as conn:
            states.append(await services.rooms.state_store.get_state(conn, group))
    resolver = services.federation.pipeline.resolver
    return dict(await resolver.resolve(room, states))


async def current(env: Env) -> dict[tuple[str, str], str]:
    room = await env.node.services.rooms.room(env.room_id)
    assert room is not None
    return dict(room.state)


async def learn(env: Env, event_id: str) -> dict[str, Any]:
    """Make an event the node's user sent the fake server's head (fetched over federation)."""
    answer = await env.fake.request(env.node, "GET", f"/_matrix/federation/v1/event/{event_id}")
    assert answer.status == 200, answer
    pdu: dict[str, Any] = answer.body["pdus"][0]
    env.room.events[event_id] = pdu
    env.room.head = event_id
    env.room.depth = pdu["depth"]
    if "state_key" in pdu:
        env.room.state[(pdu["type"], pdu["state_key"])] = event_id
    return pdu


async def test_crossing_branches_resolve_over_the_forward_extremities(env: Env) -> None:
    """The node plays the server whose users' events are the A branch (alice, the room's
    creator); the fake server's user bob (power 100) makes the B branch.  Timestamps and
    arrival order are those of the interop run that diverged: B's power levels and name
    were made before A's name and power levels and reached A after them."""
    fake, room, alice = env.fake, env.room, env.alice
    bob = room.user_id
    path = f"/_matrix/client/v3/rooms/{env.room_id}/state"
    levels = await alice.ok("GET", f"{path}/m.room.power_levels/")
    levels["users"] = {**levels["users"], bob: 100}
    base_pl = (await alice.ok("PUT", f"{path}/m.room.power_levels/", levels))["event_id"]
    base_depth = (await learn(env, base_pl))["depth"]
    create = [] if room.version.room_id_is_create_hash else [room.state[("m.room.create", "")]]
    auth = [*create, room.state[("m.room.member", bob)]]
    start = int(time.time() * 1000)

    async def from_b(
        depth: int, event_type: str, content: dict[str, Any], prev: list[str], pl: str, ms: int
    ) -> str:
        event_id, pdu = fake.build(
            room, event_type, content, state_key="", prev_events=prev, auth_events=[*auth, pl],
            depth=base_depth + depth, advance=False, origin_server_ts=start + ms,
        )  # fmt: skip
        answer = await fake.send_transaction(env.node, f"fork-{event_id}", [pdu])
        assert answer.status == 200 and answer.body["pdus"] == {event_id: {}}, answer
        return event_id

    async def from_a(event_type: str, content: dict[str, Any]) -> str:
        event_id: str = (await alice.ok("PUT", f"{path}/{event_type}/", content))["event_id"]
        return event_id

    async def check(step: str) -> None:
        assert await current(env) == await resolved_extremities(env), f"after {step}"

    topic_a = await from_a("m.room.topic", {"topic": "from A"})
    topic_b = await from_b(1, "m.room.topic", {"topic": "from B"}, [base_pl], base_pl, 1)
    await check("the concurrent topics")
    await asyncio.sleep(max(0.0, (start + 120) / 1000 - time.time()))  # after B's below
    await from_a("m.room.name", {"name": "from A"})  # on both topics
    await from_a(
        "m.room.power_levels", {**levels, "users": {**levels["users"], "@carol:example.org": 50}}
    )
    levels_b = {**levels, "events_default": 10, "users": {**levels["users"], "@c:example.org": 10}}
    pl_b = await from_b(2, "m.room.power_levels", levels_b, [topic_b, topic_a], base_pl, 70)
    await check("B's power levels")
    await from_b(3, "m.room.name", {"name": "from B"}, [pl_b], pl_b, 77)
    await check("B's name")
    no_server_errors(env)
