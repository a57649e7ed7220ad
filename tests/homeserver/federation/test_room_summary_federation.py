"""``/v1/room_summary`` of a room this node is not in: asked of the ``via`` server (its
federation ``/hierarchy``) over real HTTPS, with the same rules of who may see it."""

from __future__ import annotations

from tests.homeserver.conftest import Node
from tests.homeserver.openapi import ClientServerSpec, ValidatingClient
from tests.homeserver.rooms.test_room_summary import SUMMARY, summary


async def test_summary_of_a_remote_room(
    pair: tuple[Node, Node], openapi: ClientServerSpec | None
) -> None:
    a, b = pair
    async with (
        ValidatingClient(a.base_url, openapi) as ca,
        ValidatingClient(b.base_url, openapi) as cb,
    ):
        alice, bob = await ca.register("alice"), await cb.register("bob")
        public = await alice.create_room(preset="public_chat", name="広報",
                                         room_alias_name="kouhou")  # fmt: skip
        secret = await alice.create_room(preset="private_chat", name="人事")
        r = await summary(bob, public, via=a.server_name)
        assert r.status == 200, r
        assert r.body["name"] == "広報" and r.body["membership"] == "leave"
        assert r.body["num_joined_members"] == 1 and r.body["join_rule"] == "public"
        # Through the alias: its server tells where the room is.
        r = await summary(bob, f"#kouhou:{a.server_name}")
        assert r.status == 200 and r.body["room_id"] == public, r
        # A private room stays hidden, through A as without a via.
        for params in ({"via": a.server_name}, {}):
            r = await summary(bob, secret, **params)
            assert (r.status, r.body["errcode"]) == (404, "M_NOT_FOUND"), r
            assert "人事" not in r.body["error"]
        cb.check(SUMMARY)
        ca.check()
