"""Restricted rooms across two Kairan nodes over real HTTPS (spec Server-Server
"Restricted rooms"): the resident names one of its users who may invite in the
``/make_join`` template and signs the join at ``/send_join``; a joiner it cannot judge
gets ``M_UNABLE_TO_AUTHORISE_JOIN``; a node in the room whose own users may not invite
joins its user through a server whose user may."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from federation import events as engine_events
from tests.homeserver.client import User
from tests.homeserver.conftest import Node
from tests.homeserver.federation.test_federation import eventually
from tests.homeserver.rooms.test_restricted import AUTHORISER, V3, member, restricted_room


async def join_via(user: User, room_id: str, server: str) -> tuple[int, Any]:
    response = await user.request(
        "POST", f"{V3}/join/{quote(room_id, safe='')}", {}, params={"via": server}
    )
    return response.status, response.body


async def stored_join(node: Node, room_id: str, user_id: str) -> dict[str, Any]:
    """The join event as the node stored it (signatures included)."""
    event = await node.services.rooms.state_event(room_id, "m.room.member", user_id)
    assert event is not None and event.pdu["content"]["membership"] == "join"
    return event.pdu


async def test_remote_member_of_allowed_room_joins(pair: tuple[Node, Node]) -> None:
    a, b = pair
    async with a.client() as ca, b.client() as cb:
        alice = await ca.register("alice")
        bob, carol = await cb.register("bob"), await cb.register("carol")
        space = await alice.create_room(preset="public_chat", creation_content={"type": "m.space"})
        room = await restricted_room(alice, "restricted", space)
        assert (await join_via(bob, space, a.server_name))[0] == 200

        status, body = await join_via(bob, room, a.server_name)
        assert status == 200, body
        # Both servers hold the join A authorised, signed by A and by B.
        for node in (a, b):
            pdu = await stored_join(node, room, bob.user_id)
            assert pdu["content"][AUTHORISER] == alice.user_id
            assert set(pdu["signatures"]) == {a.server_name, b.server_name}
        assert (await member(bob, room, bob.user_id))[AUTHORISER] == alice.user_id

        # carol is in no allowed room: A refuses, and B tells her so.
        status, body = await join_via(carol, room, a.server_name)
        assert (status, body["errcode"]) == (403, "M_FORBIDDEN"), body
        assert await b.services.rooms.state_event(room, "m.room.member", carol.user_id) is None


async def test_resident_not_in_allowed_room_cannot_authorise(pair: tuple[Node, Node]) -> None:
    a, b = pair
    async with a.client() as ca, b.client() as cb:
        alice, bob = await ca.register("alice"), await cb.register("bob")
        # The allowed room lives on B, and A is not in it: A cannot tell whether bob is.
        space = await bob.create_room(preset="public_chat")
        room = await restricted_room(alice, "restricted", space)
        status, body = await join_via(bob, room, a.server_name)
        assert (status, body["errcode"]) == (400, "M_UNABLE_TO_AUTHORISE_JOIN"), body
        assert await a.services.rooms.state_event(room, "m.room.member", bob.user_id) is None


async def test_join_authorised_by_another_server_when_no_local_user_may_invite(
    pair: tuple[Node, Node],
) -> None:
    a, b = pair
    async with a.client() as ca, b.client() as cb:
        bob = await cb.register("bob")
        carol, dave = await ca.register("carol"), await ca.register("dave")
        space = await bob.create_room(preset="public_chat")
        room = await restricted_room(
            bob, "restricted", space, power_level_content_override={"invite": 50}
        )
        await bob.invite(room, carol.user_id)
        assert (await join_via(carol, room, b.server_name))[0] == 200
        assert (await join_via(dave, space, b.server_name))[0] == 200

        # A is in the room, but carol (level 0) may not invite: dave's join goes via B.
        status, body = await join_via(dave, room, b.server_name)
        assert status == 200, body
        pdu = await stored_join(a, room, dave.user_id)
        assert pdu["content"][AUTHORISER] == bob.user_id
        assert set(pdu["signatures"]) == {a.server_name, b.server_name}
        room_a = await a.services.rooms.require_room(room)
        join_id = engine_events.compute_event_id(pdu, room_a.version)
        assert room_a.state[("m.room.member", dave.user_id)] == join_id

        async def bob_sees_dave() -> bool:
            members = await bob.ok("GET", f"{V3}/rooms/{quote(room)}/joined_members")
            return dave.user_id in members["joined"]

        await eventually(bob_sees_dave)
        # And the room goes on for everyone: dave's message reaches bob.
        await dave.send(room, "こんにちは")

        async def bob_sees_message() -> bool:
            page = await bob.ok(
                "GET", f"{V3}/rooms/{quote(room)}/messages", params={"dir": "b", "limit": "5"}
            )
            return any(e["content"].get("body") == "こんにちは" for e in page["chunk"])

        await eventually(bob_sees_message)
