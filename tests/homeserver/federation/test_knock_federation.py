"""Knocking across two Kairan nodes over real HTTPS: a user of B knocks on a room of A
(``/make_knock`` and ``/send_knock``), sees it in /sync with the stripped state A sent, and
is let in by an invite; a knock A refuses is refused to the client."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from tests.homeserver.conftest import Node
from tests.homeserver.federation.test_federation import eventually
from tests.homeserver.openapi import ClientServerSpec, ValidatingClient
from tests.homeserver.rooms.test_knock import KNOCK, knock, rule

V3 = "/_matrix/client/v3"


async def test_knock_over_federation(
    pair: tuple[Node, Node], openapi: ClientServerSpec | None
) -> None:
    a, b = pair
    async with (
        ValidatingClient(a.base_url, openapi) as ca,
        ValidatingClient(b.base_url, openapi) as cb,
    ):
        alice = await ca.register("alice")
        bob, carol = await cb.register("bob"), await cb.register("carol")
        room = await alice.create_room(preset="private_chat", name="相談",
                                       initial_state=rule("knock"))  # fmt: skip
        closed = await alice.create_room(preset="private_chat")

        status, body = await knock(bob, room, {"reason": "please"}, via=a.server_name)
        assert (status, body) == (200, {"room_id": room}), body
        member = await alice.ok(
            "GET", f"{V3}/rooms/{quote(room)}/state/m.room.member/{bob.user_id}"
        )
        assert member["membership"] == "knock" and member["reason"] == "please"
        sync = await bob.sync()
        events = sync["rooms"]["knock"][room]["knock_state"]["events"]
        by_type: dict[str, Any] = {e["type"]: e for e in events}
        assert by_type["m.room.name"]["content"] == {"name": "相談"}
        assert by_type["m.room.member"]["state_key"] == bob.user_id
        assert by_type["m.room.member"]["content"]["membership"] == "knock"

        # A refuses a knock on an invite-only room; B passes the refusal on.
        status, body = await knock(carol, closed, via=a.server_name)
        assert (status, body["errcode"]) == (403, "M_FORBIDDEN"), body
        # No server to ask.
        status, body = await knock(carol, "!unknown:" + b.server_name)
        assert (status, body["errcode"]) == (404, "M_NOT_FOUND"), body

        # carol knocks and changes her mind: the leave goes through the server she knocked at.
        status, _ = await knock(carol, room, via=a.server_name)
        assert status == 200
        await carol.ok("POST", f"{V3}/rooms/{quote(room)}/leave", {})
        path = f"{V3}/rooms/{quote(room)}/state/m.room.member/{carol.user_id}"
        assert (await alice.ok("GET", path))["membership"] == "leave"
        assert room not in (await carol.sync())["rooms"].get("knock", {})

        # alice lets bob in.
        await alice.invite(room, bob.user_id)

        async def invited() -> bool:
            return room in (await bob.sync())["rooms"]["invite"]

        await eventually(invited)
        await bob.join(room)
        assert room in (await bob.ok("GET", f"{V3}/joined_rooms"))["joined_rooms"]
        ca.check()
        cb.check(KNOCK)
