"""State across servers: power levels, topic, kicks, bans and redactions."""

from __future__ import annotations

from interop.client import Client, JsonDict, MatrixError
from interop.tests.support import (
    Cluster,
    Users,
    power_levels,
    server_of,
    set_user_level,
    shared_room,
    wait_for_message,
    wait_user_level,
)
from interop.wait import SyncWatcher, wait_until


async def test_remote_user_promoted_then_changes_topic(cluster: Cluster, users: Users) -> None:
    alice = await users.on(cluster.a, "alice")
    bob = await users.on(cluster.b, "bob")
    room_id = await shared_room(alice, [bob])

    # public_chat: state_default 50, users_default 0, so B refuses bob's topic (locally).
    try:
        await bob.send_state(room_id, "m.room.topic", {"topic": "too early"})
    except MatrixError as e:
        assert e.status == 403, e
    else:
        raise AssertionError("a user at level 0 changed the topic")

    await set_user_level(alice, room_id, bob.user_id, 50)
    await wait_user_level(bob, room_id, bob.user_id, 50)
    await bob.send_state(room_id, "m.room.topic", {"topic": "set by B"})

    async def topic_on_a() -> bool:
        content = await alice.state_event(room_id, "m.room.topic")
        return content is not None and content.get("topic") == "set by B"

    await wait_until(topic_on_a, f"{alice.user_id} to see B's topic")
    events = await alice.state(room_id)
    topic = next(e for e in events if e["type"] == "m.room.topic")
    assert topic["sender"] == bob.user_id

    # At 50 bob still cannot raise himself to 100 (above his own level).
    content = await power_levels(bob, room_id)
    try:
        await bob.send_state(
            room_id,
            "m.room.power_levels",
            {**content, "users": {**content["users"], bob.user_id: 100}},
        )
    except MatrixError as e:
        assert e.status == 403, e
    else:
        raise AssertionError("a user at level 50 raised himself to 100")


async def test_kick_and_ban_across_servers(cluster: Cluster, users: Users) -> None:
    alice = await users.on(cluster.a, "alice")
    bob = await users.on(cluster.b, "bob")
    carol = await users.on(cluster.b, "carol")
    room_id = await shared_room(alice, [bob, carol])

    async def membership_on_b(expected: str) -> bool:
        return await carol.membership(room_id, bob.user_id) == expected

    bob_sync = await SyncWatcher(bob).start()
    await alice.kick(room_id, bob.user_id, "kicked by A")
    await wait_until(lambda: membership_on_b("leave"), "B to see the kick")
    await bob_sync.until(
        lambda r: room_id in r.get("rooms", {}).get("leave", {}), f"{bob.user_id} told of kick"
    )

    # A kick is not a ban: bob can come back.
    await bob.join(room_id, via=[server_of(alice)])

    async def back_on_a() -> bool:
        return await alice.membership(room_id, bob.user_id) == "join"

    await wait_until(back_on_a, f"{alice.user_id} to see {bob.user_id} rejoin")

    await alice.ban(room_id, bob.user_id, "banned by A")
    await wait_until(lambda: membership_on_b("ban"), "B to see the ban")
    try:
        await bob.join(room_id, via=[server_of(alice)])
    except MatrixError as e:
        assert e.status == 403, e
    else:
        raise AssertionError("a banned user rejoined")
    assert await alice.membership(room_id, bob.user_id) == "ban"

    # carol (same server as bob) is untouched and still talks to A.
    await carol.send_text(room_id, "still here")
    await wait_for_message(alice, room_id, "still here")


async def test_redaction_both_ways(cluster: Cluster, users: Users) -> None:
    alice = await users.on(cluster.a, "alice")
    bob = await users.on(cluster.b, "bob")
    room_id = await shared_room(alice, [bob])

    from_a = await alice.send_text(room_id, "regret from A")
    from_b = await bob.send_text(room_id, "regret from B")
    await wait_for_message(bob, room_id, "regret from A")
    await wait_for_message(alice, room_id, "regret from B")

    redact_a = await alice.redact(room_id, from_a, "oops")
    redact_b = await bob.redact(room_id, from_b, "oops")

    for observer, event_id, redaction in ((bob, from_a, redact_a), (alice, from_b, redact_b)):

        async def redacted(
            observer: Client = observer, event_id: str = event_id
        ) -> JsonDict | None:
            event = await observer.get_event(room_id, event_id)
            return event if event.get("content") == {} else None

        event = await wait_until(redacted, f"{observer.user_id} to see {event_id} redacted")
        because = event.get("unsigned", {}).get("redacted_because", {})
        assert because.get("event_id") == redaction, event
