"""Joining remote rooms, invites and messages in both directions."""

from __future__ import annotations

from interop.client import MatrixError
from interop.tests.support import (
    Cluster,
    Users,
    server_of,
    shared_room,
    wait_for_message,
    wait_joined,
)
from interop.wait import SyncWatcher, wait_until


async def test_remote_join_and_messages_both_ways(cluster: Cluster, users: Users) -> None:
    alice = await users.on(cluster.a, "alice")
    bob = await users.on(cluster.b, "bob")
    room_id = await shared_room(alice, [bob])

    await alice.send_text(room_id, "hello from A")
    await wait_for_message(bob, room_id, "hello from A")
    await bob.send_text(room_id, "hello from B")
    await wait_for_message(alice, room_id, "hello from B")

    # Both servers agree on the order of the two messages.
    for client in (alice, bob):
        events = await client.all_messages(room_id)
        said = [e["content"]["body"] for e in events if e["type"] == "m.room.message"]
        assert said == ["hello from A", "hello from B"], (client.user_id, said)


async def test_join_by_remote_alias(cluster: Cluster, users: Users) -> None:
    alice = await users.on(cluster.a, "alice")
    bob = await users.on(cluster.b, "bob")
    alias_name = f"interop-{alice.user_id[1:].split(':')[0]}"
    room_id = await alice.create_room(preset="public_chat", room_alias_name=alias_name)
    alias = f"#{alias_name}:{server_of(alice)}"

    # B resolves the alias over federation (directory query) and joins through A.
    assert await bob.join(alias) == room_id
    await wait_joined([alice, bob], room_id, [alice, bob])


async def test_invite_across_servers(cluster: Cluster, users: Users) -> None:
    alice = await users.on(cluster.a, "alice")
    bob = await users.on(cluster.b, "bob")
    dave = await users.on(cluster.b, "dave")
    room_id = await alice.create_room(preset="private_chat", name="invite only")

    # Without an invite B's user cannot get in.
    try:
        await bob.join(room_id, via=[server_of(alice)])
    except MatrixError as e:
        assert e.status == 403, e
    else:
        raise AssertionError("joined an invite-only room without an invite")

    bob_sync = await SyncWatcher(bob).start()
    dave_sync = await SyncWatcher(dave).start()
    await alice.invite(room_id, bob.user_id)
    await alice.invite(room_id, dave.user_id)
    await bob_sync.until(
        lambda r: room_id in r.get("rooms", {}).get("invite", {}), f"{bob.user_id} invited"
    )
    invite = (bob_sync.last or {})["rooms"]["invite"][room_id]
    stripped = {(e["type"], e.get("state_key")) for e in invite["invite_state"]["events"]}
    assert ("m.room.member", bob.user_id) in stripped, stripped

    # Accept without naming a server: the invite says where the room is.
    await bob.join(room_id)
    await wait_joined([alice, bob], room_id, [alice, bob])
    await bob.send_text(room_id, "thanks for the invite")
    await wait_for_message(alice, room_id, "thanks for the invite")
    await alice.send_text(room_id, "welcome")
    await wait_for_message(bob, room_id, "welcome")

    # The other invitee rejects; A sees the rejection.
    await dave_sync.until(
        lambda r: room_id in r.get("rooms", {}).get("invite", {}), f"{dave.user_id} invited"
    )
    await dave.leave(room_id)

    async def rejected() -> bool:
        return await alice.membership(room_id, dave.user_id) == "leave"

    await wait_until(rejected, f"{alice.user_id} to see {dave.user_id}'s rejection")
