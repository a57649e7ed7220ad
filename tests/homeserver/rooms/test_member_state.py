"""Memberships through the state API (``PUT /rooms/{roomId}/state/m.room.member/{userId}``),
as Synapse takes them: Element sets a per-room nickname this way (``/myroomnick``)."""

from __future__ import annotations

from urllib.parse import quote

from tests.homeserver.client import Client

V3 = "/_matrix/client/v3"


def member_path(room_id: str, user_id: str) -> str:
    return f"{V3}/rooms/{room_id}/state/m.room.member/{quote(user_id)}"


async def test_per_room_nickname_kick_and_bad_memberships(client: Client) -> None:
    alice = await client.register("alice")
    bob = await client.register("bob")
    room_id = await alice.create_room(preset="public_chat")
    await bob.join(room_id)

    # Bob's own join again: his name in this room only.
    sent = await bob.ok(
        "PUT", member_path(room_id, bob.user_id), {"membership": "join", "displayname": "防災担当"}
    )
    current = await alice.ok("GET", member_path(room_id, bob.user_id))
    assert current == {"membership": "join", "displayname": "防災担当"}
    event = await alice.ok("GET", f"{V3}/rooms/{room_id}/event/{sent['event_id']}")
    assert event["sender"] == bob.user_id and event["state_key"] == bob.user_id
    profile = await alice.ok("GET", f"{V3}/profile/{quote(bob.user_id)}")
    assert profile.get("displayname") != "防災担当"  # the global profile is unchanged

    # Bob may not set Alice's membership; a membership that is not a string is refused.
    refused = await bob.request("PUT", member_path(room_id, alice.user_id), {"membership": "leave"})
    assert refused.status == 403 and refused.body["errcode"] == "M_FORBIDDEN"
    bad = await bob.request("PUT", member_path(room_id, bob.user_id), {"membership": 1})
    assert bad.status == 400 and bad.body["errcode"] == "M_BAD_JSON"
    knock = await bob.request("PUT", member_path(room_id, bob.user_id), {"membership": "knock"})
    assert knock.status == 403

    # Alice (the room's admin) kicks Bob with a reason through the state API.
    kicked = await alice.ok(
        "PUT", member_path(room_id, bob.user_id), {"membership": "leave", "reason": "異動"}
    )
    kick = await alice.ok("GET", f"{V3}/rooms/{room_id}/event/{kicked['event_id']}")
    assert kick["content"] == {"membership": "leave", "reason": "異動"}
    assert kick["sender"] == alice.user_id
    members = await alice.ok("GET", f"{V3}/rooms/{room_id}/joined_members")
    assert list(members["joined"]) == [alice.user_id]


async def test_the_creators_join_carries_their_profile(client: Client) -> None:
    """As every join (and Synapse's createRoom): clients show the creator's name at once."""
    alice = await client.register("alice")
    await alice.ok("PUT", f"{V3}/profile/{quote(alice.user_id)}/displayname",
                   {"displayname": "総務課 Alice"})  # fmt: skip
    avatar = {"avatar_url": "mxc://example.org/alice"}
    await alice.ok("PUT", f"{V3}/profile/{quote(alice.user_id)}/avatar_url", avatar)
    room_id = await alice.create_room(preset="private_chat")
    current = await alice.ok("GET", member_path(room_id, alice.user_id))
    assert current == {
        "membership": "join",
        "displayname": "総務課 Alice",
        "avatar_url": "mxc://example.org/alice",
    }
