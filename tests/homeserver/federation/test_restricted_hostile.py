"""Hostile joins of restricted rooms: a fake remote server asks a Kairan node to vouch for
joins it should not (spec Server-Server "Restricted rooms", auth rule 4.3.5).

The allowed room is the environment's public room, which the fake server's ``mallory``
joined; ``eve`` of the same server is in no allowed room. The node signs a restricted
join only for a joiner in an allowed room, naming one of its own users who may invite;
everything else is refused before anything is stored or signed.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from federation import events as engine_events
from federation.room_versions import get as get_room_version
from tests.homeserver.fakeserver import Answer
from tests.homeserver.federation.test_federation_hostile import (
    Env,
    hostile_env,
    no_server_errors,
)
from tests.homeserver.rooms.test_restricted import AUTHORISER, V3, restricted_room

F1 = "/_matrix/federation/v1"


@pytest.fixture
async def env(tmp_path: Path, db_url: str, caplog: pytest.LogCaptureFixture) -> AsyncIterator[Env]:
    """A node whose alice has a public room (the allowed room) that the fake server's
    mallory joined."""
    async with hostile_env(tmp_path, db_url, caplog, "許可された部屋") as started:
        yield started


async def make(env: Env, membership: str, room_id: str, localpart: str) -> Answer:
    user_id = quote(env.fake.user(localpart), safe="")
    path = f"{F1}/make_{membership}/{quote(room_id, safe='')}/{user_id}?ver=10&ver=11&ver=12"
    return await env.fake.request(env.node, "GET", path)


async def send(
    env: Env, membership: str, template: dict[str, Any], version: str, **changes: Any
) -> tuple[str, Answer]:
    """Sign ``template`` (with ``changes`` to its top level or, for ``content_*``, its
    content) as the fake server and send it with ``/send_join`` or ``/send_knock``."""
    pdu = {**template, "origin_server_ts": int(time.time() * 1000)}
    pdu["content"] = dict(pdu["content"])
    for key, value in changes.items():
        if key.startswith("content_"):
            pdu["content"][key.removeprefix("content_")] = value
        else:
            pdu[key] = value
    room_version = get_room_version(version)
    signed = engine_events.sign_event(pdu, room_version, env.fake.server_name, env.fake.key)
    event_id = engine_events.compute_event_id(signed, room_version)
    api = "v2" if membership == "join" else "v1"
    path = (
        f"/_matrix/federation/{api}/send_{membership}/{quote(pdu['room_id'], safe='')}/{event_id}"
    )
    return event_id, await env.fake.request(env.node, "PUT", path, signed)


async def not_stored(env: Env, event_id: str, room_id: str, user_id: str) -> None:
    assert await env.node.services.rooms.get_event(event_id) is None
    room = await env.node.services.rooms.require_room(room_id)
    assert ("m.room.member", user_id) not in room.state


async def mallory_template(env: Env, room_id: str) -> tuple[dict[str, Any], str]:
    made = await make(env, "join", room_id, "mallory")
    assert made.status == 200, made
    assert made.body["event"]["content"][AUTHORISER] == env.alice.user_id
    return made.body["event"], made.body["room_version"]


async def test_join_for_a_user_in_no_allowed_room_is_refused(env: Env) -> None:
    """eve is in no allowed room: /make_join refuses her, and a join made from mallory's
    template but sent as eve's, naming a valid authoriser, is neither signed nor stored."""
    room = await restricted_room(env.alice, "restricted", env.room_id)
    refused = await make(env, "join", room, "eve")
    assert (refused.status, refused.body["errcode"]) == (403, "M_FORBIDDEN"), refused
    template, version = await mallory_template(env, room)
    eve = env.fake.user("eve")
    event_id, sent = await send(env, "join", template, version, sender=eve, state_key=eve)
    assert (sent.status, sent.body["errcode"]) == (403, "M_FORBIDDEN"), sent
    await not_stored(env, event_id, room, eve)
    no_server_errors(env)


async def test_join_naming_another_servers_authoriser_is_refused(env: Env) -> None:
    room = await restricted_room(env.alice, "restricted", env.room_id)
    template, version = await mallory_template(env, room)
    for authoriser in (env.fake.user("boss"), "not a user", 7):
        event_id, sent = await send(
            env, "join", template, version, **{f"content_{AUTHORISER}": authoriser}
        )
        assert (sent.status, sent.body["errcode"]) == (403, "M_FORBIDDEN"), sent
        assert "own users" in sent.body["error"]
        await not_stored(env, event_id, room, env.fake.user("mallory"))
    no_server_errors(env)


async def test_join_naming_a_local_user_who_may_not_invite_is_refused(env: Env) -> None:
    """carol is ours and joined, but below the room's invite level: we do not sign for
    her (the event would fail rule 4.3.5.2 anyway), nor store it."""
    room = await restricted_room(
        env.alice, "restricted", env.room_id, power_level_content_override={"invite": 50}
    )
    async with env.node.client() as client:
        carol = await client.register("carol")
        await env.alice.invite(room, carol.user_id)
        await carol.join(room)
    template, version = await mallory_template(env, room)
    event_id, sent = await send(
        env, "join", template, version, **{f"content_{AUTHORISER}": carol.user_id}
    )
    assert (sent.status, sent.body["errcode"]) == (403, "M_FORBIDDEN"), sent
    assert "may not authorise" in sent.body["error"]
    await not_stored(env, event_id, room, env.fake.user("mallory"))
    # With the authoriser the node chose, the same join goes through.
    event_id, sent = await send(env, "join", template, version)
    assert sent.status == 200, sent
    assert env.node.server_name in sent.body["event"]["signatures"]
    joined = await env.node.services.rooms.get_event(event_id)
    assert joined is not None and joined.rejected_reason is None
    no_server_errors(env)


async def test_make_join_when_no_local_user_may_invite_is_unable_to_grant(env: Env) -> None:
    # Room 11: its creator can give up the power to invite (in room 12 a creator cannot).
    room = await restricted_room(env.alice, "restricted", env.room_id, room_version="11")
    path = f"{V3}/rooms/{quote(room, safe='')}/state/m.room.power_levels/"
    levels = await env.alice.ok("GET", path)
    await env.alice.ok("PUT", path, {**levels, "users": {env.alice.user_id: 0}, "invite": 50})
    made = await make(env, "join", room, "mallory")
    assert (made.status, made.body["errcode"]) == (400, "M_UNABLE_TO_GRANT_JOIN"), made
    no_server_errors(env)


async def test_make_join_when_an_allowed_room_is_unknown_is_unable_to_authorise(
    env: Env,
) -> None:
    room = await restricted_room(env.alice, "restricted", f"!elsewhere:{env.fake.server_name}")
    made = await make(env, "join", room, "mallory")
    assert (made.status, made.body["errcode"]) == (400, "M_UNABLE_TO_AUTHORISE_JOIN"), made
    # A local user in no allowed room is simply refused: no local user can be in a room
    # this node is not in.
    async with env.node.client() as client:
        carol = await client.register("carol")
        joined = await carol.request("POST", f"{V3}/join/{quote(room, safe='')}", {})
    assert (joined.status, joined.body["errcode"]) == (403, "M_FORBIDDEN")


@pytest.mark.parametrize("localpart, may_join", [("mallory", True), ("eve", False)])
async def test_knock_restricted(env: Env, localpart: str, may_join: bool) -> None:
    """Under knock_restricted a member of an allowed room joins directly, authorised by
    one of ours; anyone else may knock, and only knock."""
    room = await restricted_room(env.alice, "knock_restricted", env.room_id)
    user_id = env.fake.user(localpart)
    made = await make(env, "join", room, localpart)
    if may_join:
        assert made.status == 200, made
        event_id, sent = await send(env, "join", made.body["event"], made.body["room_version"])
        assert sent.status == 200, sent
        assert sent.body["event"]["content"][AUTHORISER] == env.alice.user_id
        membership = "join"
    else:
        assert (made.status, made.body["errcode"]) == (403, "M_FORBIDDEN"), made
        knock = await make(env, "knock", room, localpart)
        assert knock.status == 200, knock
        event_id, sent = await send(env, "knock", knock.body["event"], knock.body["room_version"])
        assert sent.status == 200, sent
        membership = "knock"
    state = await env.node.services.rooms.state_event(room, "m.room.member", user_id)
    assert state is not None and state.event_id == event_id
    assert state.pdu["content"]["membership"] == membership
    no_server_errors(env)
