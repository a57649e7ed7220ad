"""Sliding sync room lists: filters (is_dm, is_invite, is_encrypted, room types), invites
with their stripped state, rooms left, heroes and unread counts."""

from __future__ import annotations

from typing import Any

from tests.homeserver.client import Client
from tests.homeserver.keyhelpers import V3
from tests.homeserver.sync.test_sliding_sync import ok


def filtered(**filters: Any) -> dict[str, Any]:
    return {
        "lists": {
            "f": {
                "ranges": [[0, 49]],
                "timeline_limit": 1,
                "required_state": [],
                "filters": filters,
            }
        }
    }


def ids(response: dict[str, Any]) -> set[str]:
    return set(response["lists"]["f"]["ops"][0]["room_ids"])


async def test_filters(client: Client) -> None:
    alice = await client.register("alice")
    bob = await client.register("bob")
    plain = await alice.create_room()
    space = await alice.create_room(creation_content={"type": "m.space"})
    encrypted = await alice.create_room(
        initial_state=[
            {
                "type": "m.room.encryption",
                "state_key": "",
                "content": {"algorithm": "m.megolm.v1.aes-sha2"},
            }
        ]
    )
    dm = await alice.create_room(is_direct=True, invite=[bob.user_id])
    await alice.ok("PUT", f"{V3}/user/{alice.user_id}/account_data/m.direct", {bob.user_id: [dm]})
    invited = await bob.create_room(invite=[alice.user_id])
    everything = {plain, space, encrypted, dm, invited}
    assert ids(await ok(alice, filtered())) == everything
    assert ids(await ok(alice, filtered(is_dm=True))) == {dm}
    assert ids(await ok(alice, filtered(is_dm=False))) == everything - {dm}
    assert ids(await ok(alice, filtered(is_invite=True))) == {invited}
    assert ids(await ok(alice, filtered(is_encrypted=True))) == {encrypted}
    assert ids(await ok(alice, filtered(room_types=["m.space"]))) == {space}
    assert ids(await ok(alice, filtered(room_types=[None]))) == everything - {space}
    assert ids(await ok(alice, filtered(not_room_types=["m.space"]))) == everything - {space}
    both = filtered(room_types=["m.space"], not_room_types=["m.space"])
    assert ids(await ok(alice, both)) == set()
    response = await ok(alice, filtered(is_dm=True))
    assert response["rooms"][dm]["is_dm"] is True


async def test_invite_state_and_rooms_left(client: Client) -> None:
    alice = await client.register("alice")
    bob = await client.register("bob")
    room = await bob.create_room(name="come in")
    await bob.send(room, "secret before the invite")
    await bob.invite(room, alice.user_id)
    first = await ok(alice, filtered())
    entry = first["rooms"][room]
    assert "timeline" not in entry and "required_state" not in entry
    state = {(e["type"], e.get("state_key")) for e in entry["invite_state"]}
    assert ("m.room.name", "") in state and ("m.room.member", alice.user_id) in state
    assert ("m.room.member", bob.user_id) in state  # the inviter's, as Synapse
    assert "secret before the invite" not in str(entry)
    # Joined, then left: the leave is shown once, then the room is gone.
    await alice.join(room)
    joined = await ok(alice, filtered(), first["pos"])
    assert joined["rooms"][room]["initial"] is True  # newly joined: sent in full
    await alice.ok("POST", f"{V3}/rooms/{room}/leave", {})
    left = await ok(alice, filtered(), joined["pos"])
    [leave] = left["rooms"][room]["timeline"]
    assert leave["content"]["membership"] == "leave"
    assert left["lists"]["f"]["count"] == 1
    await bob.send(room, "after alice left")
    assert (await ok(alice, filtered()))["lists"]["f"]["count"] == 0


async def test_heroes_counts_and_unread(client: Client) -> None:
    alice = await client.register("alice")
    bob = await client.register("bob")
    await bob.ok("PUT", f"{V3}/profile/{bob.user_id}/displayname", {"displayname": "Bob"})
    room = await alice.create_room(preset="public_chat")
    await bob.join(room)
    await bob.send(room, "one")
    await bob.ok(
        "PUT",
        f"{V3}/rooms/{room}/send/m.room.message/mention",
        {"msgtype": "m.text", "body": "two", "m.mentions": {"user_ids": [alice.user_id]}},
    )
    found = (await ok(alice, filtered()))["rooms"][room]
    assert "name" not in found
    assert found["heroes"] == [{"user_id": bob.user_id, "displayname": "Bob"}]
    assert found["joined_count"] == 2 and found["invited_count"] == 0
    assert found["notification_count"] == 2
    assert found["highlight_count"] == 1


async def test_heroes_in_synapse_order(client: Client) -> None:
    """Joined members first, then invited, each in the order they came (not by ID)."""
    alice = await client.register("alice")
    zed = await client.register("zed")
    bob = await client.register("bob")
    carol = await client.register("carol")
    room = await alice.create_room(preset="public_chat")
    await alice.invite(room, carol.user_id)
    await zed.join(room)
    await bob.join(room)
    found = (await ok(alice, filtered()))["rooms"][room]
    assert [h["user_id"] for h in found["heroes"]] == [zed.user_id, bob.user_id, carol.user_id]
    # An invite carries its stripped state and the room's name, no timeline.
    named = await alice.create_room(name="named", invite=[bob.user_id])
    invite = (await ok(bob, filtered(is_invite=True)))["rooms"][named]
    assert invite["name"] == "named" and "timeline" not in invite and invite["invite_state"]


async def test_reading_a_room_sends_its_new_counts(client: Client) -> None:
    alice = await client.register("alice")
    bob = await client.register("bob")
    room = await alice.create_room(preset="public_chat")
    await bob.join(room)
    await bob.send(room, "one")
    last = await bob.send(room, "two")
    first = await ok(alice, filtered())
    assert first["rooms"][room]["notification_count"] == 2
    # Someone else's receipt changes nothing of alice's counts: no entry.
    await bob.ok("POST", f"{V3}/rooms/{room}/receipt/m.read/{last}", {})
    quiet = await ok(alice, filtered(), first["pos"])
    assert quiet["rooms"] == {}
    await alice.ok("POST", f"{V3}/rooms/{room}/receipt/m.read/{last}", {})
    read = await ok(alice, filtered(), quiet["pos"])
    assert read["rooms"][room] == {"notification_count": 0, "highlight_count": 0}
