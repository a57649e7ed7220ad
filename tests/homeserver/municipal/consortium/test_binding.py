"""Rooms bound to a consortium, on real nodes over HTTP (SQLite and PostgreSQL): the
binding's auth and form, what a node refuses in a bound room, and the server ACL it keeps
equal to the membership.  Nodes on distinct loopback addresses: ACLs ignore ports."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.homeserver.client import User
from tests.homeserver.conftest import Node, running_nodes
from tests.homeserver.municipal.consortium.docs import key, next_version
from tests.homeserver.municipal.consortium.nodes import document_for, feature, service_of, until

BINDING = "jp.kairan.consortium"
ACL = "m.room.server_acl"


@contextlib.asynccontextmanager
async def running(
    tmp_path: Path, *specs: tuple[str, str, str, dict[str, Any]]
) -> AsyncIterator[list[Node]]:
    """Nodes over TLS: (name, host, database URL, config changes) each."""
    async with running_nodes() as group:
        for name, host, url, changes in specs:
            await group.start(tmp_path / name, url, tls=True, host=host, **changes)
        yield group.nodes


def host(node: Node) -> str:
    return node.server_name.rsplit(":", 1)[0]


async def state(user: User, room: str, event_type: str) -> Any:
    response = await user.request("GET", f"/_matrix/client/v3/rooms/{room}/state/{event_type}/")
    return response.body if response.status == 200 else None


async def put_state(user: User, room: str, event_type: str, content: Any) -> Any:
    return await user.request(
        "PUT", f"/_matrix/client/v3/rooms/{room}/state/{event_type}/", content
    )


async def power_to(user: User, room: str, other: User, level: int) -> None:
    """``user`` gives ``other`` (of another node) ``level``; returns once it knows."""
    content = await state(user, room, "m.room.power_levels")
    content["users"][other.user_id] = level
    assert (await put_state(user, room, "m.room.power_levels", content)).status == 200

    async def known() -> Any:
        seen = await state(other, room, "m.room.power_levels")
        return True if seen and seen["users"].get(other.user_id) == level else None

    await eventually(known)


async def test_binding_needs_the_power_and_a_well_formed_content(
    tmp_path: Path, db_url: str
) -> None:
    settings = {"features": feature()}
    async with (
        running(tmp_path, ("a", "127.0.0.2", db_url, settings)) as [a],
        a.client() as ca,
    ):
        alice, mallory = await ca.register("alice"), await ca.register("mallory")
        room = await alice.create_room(preset="public_chat")
        await mallory.join(room)
        # No power (state_default 50): the auth rules refuse it.
        refused = await put_state(mallory, room, BINDING, {"id": "kanto"})
        assert (refused.status, refused.body["errcode"]) == (403, "M_FORBIDDEN")
        assert await state(alice, room, BINDING) is None
        # Malformed: 400 before anything is built.
        for bad in ({"id": "Kanto!"}, {"id": 5}, {"id": "kanto", "extra": 1}, {"body": "x"}):
            refused = await put_state(alice, room, BINDING, bad)
            assert (refused.status, refused.body["errcode"]) == (400, "M_BAD_JSON"), bad
        wrong_key = await alice.request(
            "PUT", f"/_matrix/client/v3/rooms/{room}/state/{BINDING}/x", {"id": "kanto"}
        )
        assert (wrong_key.status, wrong_key.body["errcode"]) == (400, "M_BAD_JSON")
        assert await state(alice, room, BINDING) is None
        # Well formed, with the text fallback; and empty content (unbound).
        bound = {"id": "kanto", "body": "This room is shared by kanto's members."}
        assert (await put_state(alice, room, BINDING, bound)).status == 200
        assert (await put_state(alice, room, BINDING, {})).status == 200


async def test_attacks_on_a_bound_room(
    tmp_path: Path,
    db_url: str,
    db_url_b: str,
    db_url_c: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A holds kanto (A, B); B runs the feature but holds no document; C is outside."""
    async with running(
        tmp_path,
        ("a", "127.0.0.2", db_url, {"features": feature(acl_delay_seconds=0.1)}),
        ("b", "127.0.0.3", db_url_b, {"features": feature(acl_delay_seconds=0.1)}),
        ("c", "127.0.0.4", db_url_c, {}),
    ) as (a, b, c):
        await service_of(a).apply(document_for([a, b]), "test")
        caplog.set_level(logging.INFO, logger="homeserver.municipal.consortium")
        async with a.client() as ca, b.client() as cb, c.client() as cc:
            alice, bob = await ca.register("alice"), await cb.register("bob")
            carol = await cc.register("carol")
            room = await alice.create_room(preset="private_chat")
            assert (await put_state(alice, room, BINDING, {"id": "kanto"})).status == 200
            await alice.invite(room, bob.user_id)
            await bob.join(room)
            await power_to(alice, room, bob, 100)
            acl = await eventually(lambda: state(alice, room, ACL))
            assert acl["allow"] == [host(a), host(b)]
            # A's user may not invite a non-member's user into the bound room (open
            # federation: the binding decides).
            refused = await alice.request(
                "POST", f"/_matrix/client/v3/rooms/{room}/invite", {"user_id": carol.user_id}
            )
            assert (refused.status, refused.body["errcode"]) == (403, "M_FORBIDDEN")
            assert "not a member of consortium kanto" in refused.body["error"]
            # B holds no document, so its user may; A soft-fails the invite it receives.
            await bob.invite(room, carol.user_id)
            b_room = await b.services.rooms.room(room)
            assert b_room is not None
            invite_id = b_room.state[("m.room.member", carol.user_id)]
            await until_stored(a, invite_id)
            a_room = await a.services.rooms.room(room)
            assert a_room is not None and carol.user_id not in a_room.members
            # B's user (power 100) sends an ACL that denies A: soft-failed on A, whose
            # view keeps the membership ACL.
            attack = {"allow": [host(b)], "deny": [], "allow_ip_literals": True}
            sent = await put_state(bob, room, ACL, attack)
            assert sent.status == 200
            await until_stored(a, sent.body["event_id"])
            assert (await state(alice, room, ACL))["allow"] == [host(a), host(b)]
            assert (await state(bob, room, ACL))["allow"] == [host(b)]
            # A binding to a consortium A does not hold: the ACL is left alone, logged.
            other = await alice.create_room(preset="private_chat")
            assert (await put_state(alice, other, BINDING, {"id": "tohoku"})).status == 200
            await until(lambda: any("does not hold" in r.message for r in caplog.records))
            assert await state(alice, other, ACL) is None


async def eventually(read: Callable[[], Awaitable[Any]], seconds: float = 10.0) -> Any:
    """What ``read`` returns once it is not None (fails after ``seconds``)."""
    start = time.monotonic()
    while (found := await read()) is None:
        if time.monotonic() - start > seconds:
            raise AssertionError(f"not within {seconds} s")
        await asyncio.sleep(0.05)
    return found


async def until_stored(node: Node, event_id: str) -> None:
    for _ in range(200):
        if await node.services.rooms.get_event(event_id) is not None:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{event_id} never reached {node.server_name}")


async def test_the_acl_follows_the_membership(tmp_path: Path, db_url: str, db_url_b: str) -> None:
    """A and B hold kanto and both have a user with the power to set the ACL: binding
    sets it at once, each new version that changes the members changes it once (A's
    user, the most powerful, first; B finds it right), unbinding leaves it."""
    settings = {"features": feature(acl_delay_seconds=2)}
    async with running(
        tmp_path, ("a", "127.0.0.2", db_url, settings), ("b", "127.0.0.3", db_url_b, settings)
    ) as (a, b):
        v1 = document_for([a, b])
        for node in (a, b):
            await service_of(node).apply(v1, "test")
        async with a.client() as ca, b.client() as cb:
            alice, bob = await ca.register("alice"), await cb.register("bob")
            room = await alice.create_room(preset="private_chat")
            await alice.invite(room, bob.user_id)
            await bob.join(room)
            await power_to(alice, room, bob, 100)
            # Bound by B's user: the ACL is set at once (by A's user, who has more power
            # by user ID order at equal levels; B waits and finds it right).
            assert (await put_state(bob, room, BINDING, {"id": "kanto"})).status == 200
            wanted = {
                "allow": [host(a), host(b)],
                "deny": [],
                "allow_ip_literals": True,
                BINDING: {"id": "kanto", "version": 1},
            }
            for user in (alice, bob):
                assert await eventually(lambda u=user: state(u, room, ACL)) == wanted
            # A version that changes no member changes no ACL; one adding D does, once.
            v2 = next_version(v1)
            await service_of(a).apply(v2, "test")
            await until(lambda: service_of(b).consortium("kanto").version == 2)  # type: ignore[union-attr]
            v3 = next_version(v2, add={"d.example.jp": key("d")})
            await service_of(a).apply(v3, "test")
            wanted = {
                **wanted,
                "allow": [host(a), host(b), "d.example.jp"],
                BINDING: {"id": "kanto", "version": 3},
            }

            async def changed(user: User) -> Any:
                acl = await state(user, room, ACL)
                return acl if acl and acl[BINDING]["version"] == 3 else None

            for user in (alice, bob):
                assert await eventually(lambda u=user: changed(u)) == wanted
            await asyncio.sleep(3.0)  # B's delayed look has come and gone
            for user in (alice, bob):
                senders = [e["sender"] for e in await history(user, room, ACL)]
                assert senders == [alice.user_id, alice.user_id], user.user_id
            # Unbound: the ACL stays; a new version no longer touches it.
            assert (await put_state(alice, room, BINDING, {})).status == 200
            await service_of(a).apply(next_version(v3, remove=("d.example.jp",)), "test")
            await asyncio.sleep(1.0)
            assert await state(alice, room, ACL) == wanted
            assert len(await history(alice, room, ACL)) == 2


async def history(user: User, room: str, event_type: str) -> list[dict[str, Any]]:
    """The room's events of ``event_type`` as the user sees them, oldest first."""
    found = await user.ok(
        "GET", f"/_matrix/client/v3/rooms/{room}/messages",
        params={"dir": "b", "limit": "200", "filter": json.dumps({"types": [event_type]})},
    )  # fmt: skip
    return list(reversed(found["chunk"]))
