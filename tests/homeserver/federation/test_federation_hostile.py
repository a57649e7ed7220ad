"""Hostile federation input: a fake remote server joins a room on a Kairan node, then attacks.

Each test shows that the node rejects or neutralises the input, logs it, never stores it
as accepted (not in the room's state, timeline or /sync) and never answers 5xx.  Where a
Synapse/Dendrite/Conduit advisory exists for the attack, the test is named after it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from federation import events as engine_events
from federation.signing import generate_signing_key
from homeserver.config import FederationSettings
from homeserver.storage.schema import events as events_table
from homeserver.storage.schema import federation_queue
from tests.homeserver.client import User
from tests.homeserver.conftest import Node, running_node
from tests.homeserver.fakeserver import FakeServer, JoinedRoom

SEND = "/_matrix/federation/v1/send"


@dataclass
class Env:
    node: Node
    fake: FakeServer
    alice: User
    room: JoinedRoom
    caplog: pytest.LogCaptureFixture
    tmp_path: Path

    @property
    def room_id(self) -> str:
        return self.room.room_id


@contextlib.asynccontextmanager
async def hostile_env(
    tmp_path: Path, db_url: str, caplog: pytest.LogCaptureFixture, room_name: str
) -> AsyncIterator[Env]:
    """A node (TLS) whose alice has a public room named ``room_name`` that a fake server
    joined; INFO logs captured."""
    caplog.set_level(logging.INFO)
    async with (
        running_node(tmp_path / "node", db_url, tls=True) as node,
        FakeServer(tmp_path / "fake") as fake,
        node.client() as client,
    ):
        alice = await client.register("alice")
        room_id = await alice.create_room(preset="public_chat", name=room_name)
        room = await fake.join(node, room_id)
        yield Env(node, fake, alice, room, caplog, tmp_path)


@pytest.fixture
async def env(tmp_path: Path, db_url: str, caplog: pytest.LogCaptureFixture) -> AsyncIterator[Env]:
    async with hostile_env(tmp_path, db_url, caplog, "回覧板") as started:
        yield started


# ---------------------------------------------------------------------- helpers


async def stored(env: Env, event_id: str | None) -> Any:
    assert event_id is not None
    return await env.node.services.rooms.get_event(event_id)


async def copies_in_db(env: Env, event_id: str) -> int:
    async with env.node.services.rooms.db.read() as conn:
        count = await conn.scalar(
            select(func.count())
            .select_from(events_table)
            .where(events_table.c.event_id == event_id)
        )
    return int(count or 0)


async def timeline_ids(user: User, room_id: str) -> list[str]:
    page = await user.ok(
        "GET", f"/_matrix/client/v3/rooms/{room_id}/messages", params={"dir": "b", "limit": "100"}
    )
    return [e["event_id"] for e in page["chunk"]]


async def sync_event_ids(user: User, room_id: str) -> list[str]:
    synced = await user.sync()
    joined = synced["rooms"].get("join", {}).get(room_id, {})
    return [e["event_id"] for e in joined.get("timeline", {}).get("events", [])] + [
        e["event_id"] for e in joined.get("state", {}).get("events", [])
    ]


async def current_state(env: Env) -> dict[tuple[str, str], str]:
    room = await env.node.services.rooms.room(env.room_id)
    assert room is not None
    return dict(room.state)


async def assert_not_accepted(env: Env, event_id: str) -> None:
    """Not in the room's current state, its timeline (/messages) or /sync."""
    assert event_id not in (await current_state(env)).values()
    assert event_id not in await timeline_ids(env.alice, env.room_id)
    assert event_id not in await sync_event_ids(env.alice, env.room_id)


async def assert_accepted(env: Env, event_id: str) -> None:
    assert event_id in await timeline_ids(env.alice, env.room_id)


def logged(env: Env, *fragments: str) -> bool:
    return any(all(f in r.getMessage() for f in fragments) for r in env.caplog.records)


def no_server_errors(env: Env) -> None:
    errors = [r for r in env.caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]


def message(env: Env, body: str, **kwargs: Any) -> tuple[str, dict[str, Any]]:
    return env.fake.build(env.room, "m.room.message", {"msgtype": "m.text", "body": body}, **kwargs)


async def send_one(env: Env, txn_id: str, pdu: Any) -> dict[str, Any]:
    answer = await env.fake.send_transaction(env.node, txn_id, [pdu])
    assert answer.status == 200, answer
    pdus: dict[str, Any] = answer.body["pdus"]
    return pdus


# ---------------------------------------------------------------------- baseline


async def test_fake_server_joins_and_its_messages_are_accepted(env: Env) -> None:
    """The attacker's baseline: the fake server's well-formed events are accepted, so
    every rejection below is caused by the one thing each test breaks."""
    event_id, pdu = message(env, "こんにちは")
    assert await send_one(env, "ok1", pdu) == {event_id: {}}
    await assert_accepted(env, event_id)
    assert env.room.user_id in (await current_state(env)).__repr__()
    no_server_errors(env)


# ---------------------------------------------------------------------- signatures and hashes


async def test_forged_signature_is_dropped(env: Env) -> None:
    """An event whose signature was made with another key than the sender server's
    published one fails step 2 of the checks on receipt and is dropped, never stored."""
    event_id, pdu = message(env, "forged", advance=False)
    impostor = generate_signing_key(env.fake.key.version)
    forged = engine_events.sign_event(
        {k: v for k, v in pdu.items() if k != "signatures"},
        env.room.version,
        env.fake.server_name,
        impostor,
    )
    result = await send_one(env, "forged1", forged)
    assert list(result) == [event_id]
    assert "signature" in result[event_id]["error"].lower()
    assert await stored(env, event_id) is None
    assert logged(env, "dropped PDU", event_id)
    no_server_errors(env)


async def test_unsigned_event_is_dropped(env: Env) -> None:
    """An event without any signature of its sender's server is dropped."""
    event_id, pdu = message(env, "unsigned", advance=False)
    stripped = {**pdu, "signatures": {}}
    result = await send_one(env, "unsigned1", stripped)
    assert "not signed" in result[event_id]["error"]
    assert await stored(env, event_id) is None
    assert logged(env, "dropped PDU", event_id)


async def test_wrong_content_hash_is_stored_redacted(env: Env) -> None:
    """An event whose content does not match its content hash (but whose signature over
    the redacted form holds) is redacted before it is processed: the node keeps and
    serves only the redacted event, never the content as sent."""
    event_id, pdu = message(env, "original")
    tampered = {**pdu, "content": {"msgtype": "m.text", "body": "改ざんされた本文"}}
    result = await send_one(env, "hash1", tampered)
    assert result == {event_id: {}}
    event = await stored(env, event_id)
    assert event is not None and event.pdu["content"] == {}
    page = await env.alice.ok(
        "GET", f"/_matrix/client/v3/rooms/{env.room_id}/messages", params={"dir": "b"}
    )
    served = next(e for e in page["chunk"] if e["event_id"] == event_id)
    assert served["content"] == {}
    assert "改ざん" not in json.dumps(page, ensure_ascii=False)
    assert logged(env, "content hash", event_id)


# ---------------------------------------------------------------------- auth


async def test_GHSA_jhjh_776m_4765_event_failing_auth_is_rejected(env: Env) -> None:
    """GHSA-jhjh-776m-4765 (Synapse, CVE-2022-31152): some auth rules were not applied to
    events from federation, so crafted events were accepted and state diverged.  Here a
    user with power 0 gives himself power 100 and renames the room: both are stored as
    rejected, never become state, never reach the timeline or /sync, and are not sent on."""
    state = await current_state(env)
    power = await stored(env, state[("m.room.power_levels", "")])
    content = dict(power.pdu["content"])
    content["users"] = {**content.get("users", {}), env.room.user_id: 100}
    pl_id, pl = env.fake.build(env.room, "m.room.power_levels", content, state_key="")
    name_id, name = env.fake.build(env.room, "m.room.name", {"name": "乗っ取り"}, state_key="")
    answer = await env.fake.send_transaction(env.node, "auth1", [pl, name])
    assert answer.status == 200
    assert set(answer.body["pdus"]) == {pl_id, name_id}
    for event_id in (pl_id, name_id):
        event = await stored(env, event_id)
        assert event is not None and event.rejected_reason, event
        await assert_not_accepted(env, event_id)
        assert logged(env, "rejecting", event_id)
    assert (await current_state(env))[("m.room.power_levels", "")] == state[
        ("m.room.power_levels", "")
    ]
    name_now = await env.alice.ok(
        "GET", f"/_matrix/client/v3/rooms/{env.room_id}/state/m.room.name"
    )
    assert name_now == {"name": "回覧板"}
    async with env.node.services.rooms.db.read() as conn:
        queued = (await conn.execute(select(federation_queue.c.payload))).scalars().all()
    assert not any(pl_id in str(p) or name_id in str(p) for p in queued)
    no_server_errors(env)


async def test_event_citing_wrong_auth_events_is_rejected(env: Env) -> None:
    """A message that cites no membership of its sender in auth_events fails step 4
    (auth against its own auth events) and is stored rejected."""
    state = await current_state(env)
    event_id, pdu = message(env, "no membership", auth_events=[state[("m.room.power_levels", "")]])
    result = await send_one(env, "auth2", pdu)
    assert result == {event_id: {}}
    event = await stored(env, event_id)
    assert event is not None and event.rejected_reason and "auth events" in event.rejected_reason
    await assert_not_accepted(env, event_id)
    assert logged(env, "rejecting", event_id)


# ---------------------------------------------------------------------- origin


async def test_event_from_a_user_of_another_server_is_dropped(env: Env) -> None:
    """Servers may only relay their own users' events: a message whose sender belongs to
    the node itself (alice), sent and signed by the fake server, is dropped."""
    event_id, pdu = message(env, "I am alice", sender=env.alice.user_id, advance=False)
    result = await send_one(env, "origin1", pdu)
    assert f"is not a user of {env.fake.server_name}" in result[event_id]["error"]
    assert await stored(env, event_id) is None
    assert logged(env, "dropped PDU", event_id)


async def test_transaction_origin_mismatch_is_refused(env: Env) -> None:
    """A transaction whose body claims another origin than the authenticated one is
    refused as a whole (400) and nothing in it is stored."""
    event_id, pdu = message(env, "spoofed origin", advance=False)
    body = {"origin": env.node.server_name, "origin_server_ts": 0, "pdus": [pdu], "edus": []}
    answer = await env.fake.request(env.node, "PUT", f"{SEND}/origin2", body)
    assert answer.status == 400 and answer.body["errcode"] == "M_BAD_JSON"
    assert await stored(env, event_id) is None


async def test_request_signed_with_wrong_key_is_unauthorized(env: Env) -> None:
    """An X-Matrix header signed with a key the origin does not publish: 401."""
    real = env.fake.key
    env.fake.key = generate_signing_key(real.version)
    try:
        event_id, pdu = message(env, "bad request signature", advance=False)
        answer = await env.fake.send_transaction(env.node, "xmatrix1", [pdu])
    finally:
        env.fake.key = real
    assert answer.status == 401 and answer.body["errcode"] == "M_UNAUTHORIZED"
    assert await stored(env, event_id) is None


# ---------------------------------------------------------------------- size and values


async def test_oversized_pdu_is_dropped(env: Env) -> None:
    """A PDU over 64 KiB as canonical JSON (correctly signed) fails the format check and
    is not stored."""
    _, pdu = message(env, "small", advance=False)
    unsigned = {k: v for k, v in pdu.items() if k not in ("signatures", "hashes")}
    content = {"msgtype": "m.text", "body": "大" * 30_000}
    event_id, big = env.fake.sign(env.room, {**unsigned, "content": content})
    assert len(json.dumps(big, ensure_ascii=False).encode()) > 65_536
    result = await send_one(env, "size1", big)
    assert "65536" in result[event_id]["error"]
    assert await stored(env, event_id) is None
    assert logged(env, "dropped PDU", event_id)


async def test_negative_depth_is_dropped(env: Env) -> None:
    _, pdu = message(env, "negative depth", advance=False)
    pdu = {k: v for k, v in pdu.items() if k not in ("signatures", "hashes")}
    event_id, pdu = env.fake.sign(env.room, {**pdu, "depth": -1})
    result = await send_one(env, "depth1", pdu)
    assert "depth" in result[event_id]["error"]
    assert await stored(env, event_id) is None
    assert logged(env, "dropped PDU", event_id)


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e400"])
async def test_nan_and_infinity_in_raw_json_are_refused(env: Env, value: str) -> None:
    """NaN and Infinity are not JSON (Python's json module reads them anyway).  Sent as
    raw bytes in a PDU's depth or content, the whole request is refused with 400
    M_NOT_JSON, as Synapse does, and nothing is stored (no 500 re-encoding them)."""
    event_id, pdu = message(env, "numbers", advance=False)
    for where in ("depth", "content"):
        body = {"origin": env.fake.server_name, "origin_server_ts": 1, "pdus": [pdu], "edus": []}
        text = json.dumps(body)
        if where == "depth":
            raw = text.replace(f'"depth": {pdu["depth"]}', f'"depth": {value}')
        else:
            raw = text.replace('"msgtype": "m.text"', f'"msgtype": "m.text", "n": {value}')
        assert raw != text
        answer = await env.fake.request(
            env.node, "PUT", f"{SEND}/num-{where}-{value}", raw=raw.encode(), signed_content=body
        )
        assert answer.status == 400, answer
        assert answer.body["errcode"] == "M_NOT_JSON", answer
    assert await stored(env, event_id) is None
    no_server_errors(env)


@pytest.mark.parametrize("value", [1.5, 2**53, 2**60, -(2**60), 10**30])
async def test_signed_floats_and_huge_integers_in_pdu_are_dropped(env: Env, value: Any) -> None:
    """Floats and integers outside [-(2**53)+1, 2**53-1] encode as JSON, so a hostile
    server can sign events holding them (depth 2**60 would then be the room's depth).
    Room versions 6+ require canonical JSON: each such PDU gets a per-PDU error and is
    dropped; the transaction itself is fine."""
    _, pdu = message(env, "numbers", advance=False)
    unsigned = {k: v for k, v in pdu.items() if k not in ("signatures", "hashes")}
    in_depth = env.fake.sign(env.room, {**unsigned, "depth": value})
    in_content = env.fake.sign(
        env.room, {**unsigned, "content": {**unsigned["content"], "n": [{"deep": value}]}}
    )
    answer = await env.fake.send_transaction(env.node, f"num-{value}", [in_depth[1], in_content[1]])
    assert answer.status == 200, answer
    for event_id, _ in (in_depth, in_content):
        error = answer.body["pdus"][event_id]["error"]
        assert "integer" in error or "canonical JSON" in error or "negative" in error, error
        assert await stored(env, event_id) is None
        assert logged(env, "dropped PDU", event_id)
    room = await env.node.services.rooms.room(env.room_id)
    assert room is not None and room.depth < 2**53
    no_server_errors(env)


async def test_malformed_json_body_is_refused(env: Env) -> None:
    for raw in (b"{", b"[]", b'{"pdus": {}}', b'{"pdus": [1, "x", null]}', b"\xff\xfe"):
        answer = await env.fake.request(
            env.node, "PUT", f"{SEND}/bad-{raw.hex()}", raw=raw, signed_content=None
        )
        assert answer.status in (400, 401), (raw, answer)
    no_server_errors(env)


# ---------------------------------------------------------------------- transactions


async def test_replayed_transaction_gets_the_same_answer_and_stores_nothing_twice(
    env: Env,
) -> None:
    """A transaction ID seen before from the same origin gets the first answer again,
    even with other contents, and nothing is processed twice."""
    event_id, pdu = message(env, "once")
    first = await send_one(env, "replay1", pdu)
    assert first == {event_id: {}}
    other_id, other = message(env, "smuggled in a replay")
    again = await send_one(env, "replay1", other)
    assert again == first
    assert await stored(env, other_id) is None
    # The same PDU in a new transaction: accepted once, stored once.
    assert await send_one(env, "replay2", pdu) == {event_id: {}}
    assert await copies_in_db(env, event_id) == 1
    assert (await timeline_ids(env.alice, env.room_id)).count(event_id) == 1


async def test_transaction_with_too_many_pdus_or_edus_is_refused(env: Env) -> None:
    """The spec caps a transaction at 50 PDUs and 100 EDUs; a larger one is refused (400)
    before any of it is processed."""
    pdus = [message(env, f"flood {i}")[1] for i in range(51)]
    answer = await env.fake.send_transaction(env.node, "flood1", pdus)
    assert answer.status == 400 and answer.body["errcode"] == "M_BAD_JSON"
    first_id = engine_events.compute_event_id(pdus[0], env.room.version)
    assert await stored(env, first_id) is None
    edus = [{"edu_type": "m.typing", "content": {}}] * 101
    answer = await env.fake.send_transaction(env.node, "flood2", [], edus)
    assert answer.status == 400 and answer.body["errcode"] == "M_BAD_JSON"


async def test_pdu_for_unknown_room_is_refused_per_pdu(env: Env) -> None:
    """A PDU for a room the node does not know gets a per-PDU error and is not stored;
    the other PDUs of the transaction are processed."""
    good_id, good = message(env, "good neighbour")
    pdu = {k: v for k, v in good.items() if k not in ("signatures", "hashes")}
    bad_id, bad = env.fake.sign(env.room, {**pdu, "room_id": "!nowhere:" + env.node.server_name})
    answer = await env.fake.send_transaction(env.node, "unknown1", [bad, good])
    assert answer.status == 200
    assert answer.body["pdus"][good_id] == {}
    assert "unknown room" in answer.body["pdus"][bad_id]["error"]
    assert await stored(env, bad_id) is None
    assert logged(env, bad_id)


async def test_CVE_2018_12291_server_not_in_room_gets_nothing(env: Env) -> None:
    """CVE-2018-12291 (Synapse): /get_missing_events returned events to servers that should
    not see them.  A second server that never joined is refused history (403), its events
    for the room are rejected (its user is not a member), and its EDUs are ignored."""
    outsider = FakeServer(env.tmp_path / "outsider")
    await outsider.start()
    try:
        path = f"/_matrix/federation/v1/get_missing_events/{env.room_id}"
        body = {"earliest_events": [], "latest_events": [env.room.head], "limit": 10}
        answer = await outsider.request(env.node, "POST", path, body)
        assert answer.status == 403 and answer.body["errcode"] == "M_FORBIDDEN"
        state = await current_state(env)
        room = dataclasses.replace(env.room, user_id=outsider.user("eve"), events={})
        event_id, pdu = outsider.build(
            room,
            "m.room.message",
            {"msgtype": "m.text", "body": "from outside"},
            auth_events=[state[("m.room.power_levels", "")]],
        )
        typing = {
            "edu_type": "m.typing",
            "content": {"room_id": env.room_id, "user_id": outsider.user("eve"), "typing": True},
        }
        answer = await outsider.send_transaction(env.node, "outsider1", [pdu], [typing])
        assert answer.status == 200
        event = await stored(env, event_id)
        assert event is not None and event.rejected_reason
        await assert_not_accepted(env, event_id)
        synced = await env.alice.sync()
        ephemeral = synced["rooms"]["join"][env.room_id].get("ephemeral", {}).get("events", [])
        assert not any(e["type"] == "m.typing" and e["content"]["user_ids"] for e in ephemeral)
        assert logged(env, "rejecting", event_id)
    finally:
        await outsider.close()


async def test_get_missing_events_limit_is_bounded(env: Env) -> None:
    """A huge limit in /get_missing_events is capped (the node never walks the whole DAG
    for one request); malformed fields answer 400-class or are ignored, never 500."""
    for i in range(5):
        await env.alice.send(env.room_id, f"history {i}")
    latest = (await current_state(env))[("m.room.member", env.alice.user_id)]
    room = await env.node.services.rooms.room(env.room_id)
    assert room is not None
    path = f"/_matrix/federation/v1/get_missing_events/{env.room_id}"
    answer = await env.fake.request(
        env.node,
        "POST",
        path,
        {"earliest_events": [], "latest_events": list(room.extremities), "limit": 2**52},
    )
    assert answer.status == 200
    assert 0 < len(answer.body["events"]) <= 100
    for body in (
        {"earliest_events": "x", "latest_events": [latest], "limit": "1"},
        {"earliest_events": [], "latest_events": {"a": 1}, "limit": -5},
        {"earliest_events": [None], "latest_events": [123], "limit": None},
    ):
        answer = await env.fake.request(env.node, "POST", path, body)
        assert answer.status < 500, (body, answer)
    no_server_errors(env)


# ---------------------------------------------------------------------- EDUs


async def test_malformed_and_foreign_edus_are_ignored(env: Env) -> None:
    """Typing and receipt EDUs for users of another server, for rooms the user is not in,
    or of the wrong shape change nothing; a well-formed one still works.  The transaction
    is answered 200 and each ignored EDU is logged."""
    foreign = env.alice.user_id
    stranger = env.fake.user("stranger")
    other_room = await env.alice.create_room(preset="public_chat")
    message_id = (await timeline_ids(env.alice, env.room_id))[0]
    bad_edus: list[Any] = [
        {"edu_type": "m.typing", "content": {"room_id": env.room_id, "user_id": foreign, "typing": True}},
        {"edu_type": "m.typing", "content": {"room_id": env.room_id, "user_id": stranger, "typing": True}},
        {"edu_type": "m.typing", "content": {"room_id": other_room, "user_id": env.room.user_id, "typing": True}},
        {"edu_type": "m.typing", "content": {"room_id": env.room_id, "user_id": env.room.user_id, "typing": "yes"}},
        {"edu_type": "m.typing", "content": []},
        {"edu_type": "m.receipt", "content": {env.room_id: {"m.read": {foreign: {"event_ids": [message_id], "data": {"ts": 1}}}}}},
        {"edu_type": "m.receipt", "content": {other_room: {"m.read": {env.room.user_id: {"event_ids": [message_id]}}}}},
        {"edu_type": "m.receipt", "content": {env.room_id: {"m.read": {env.room.user_id: {"event_ids": "nope"}}}}},
        {"edu_type": "m.receipt", "content": {env.room_id: ["x"]}},
        {"edu_type": None, "content": {}},
        "not an object",
        42,
    ]  # fmt: skip
    answer = await env.fake.send_transaction(env.node, "edu1", [], bad_edus)
    assert answer.status == 200 and answer.body == {"pdus": {}}
    synced = await env.alice.sync()
    for room_id in (env.room_id, other_room):
        ephemeral = synced["rooms"]["join"][room_id].get("ephemeral", {}).get("events", [])
        typing = [e for e in ephemeral if e["type"] == "m.typing"]
        assert all(not e["content"]["user_ids"] for e in typing), typing
        receipts = [e for e in ephemeral if e["type"] == "m.receipt"]
        assert not receipts, receipts
    assert logged(env, "ignored", "m.typing", env.fake.server_name)
    assert logged(env, "ignored", "m.receipt", env.fake.server_name)
    # The same channel still works for a well-formed EDU.
    good = {"edu_type": "m.typing", "content": {"room_id": env.room_id, "user_id": env.room.user_id, "typing": True}}  # fmt: skip
    answer = await env.fake.send_transaction(env.node, "edu2", [], [good])
    assert answer.status == 200
    synced = await env.alice.sync()
    ephemeral = synced["rooms"]["join"][env.room_id]["ephemeral"]["events"]
    assert {"type": "m.typing", "content": {"user_ids": [env.room.user_id]}} in ephemeral
    no_server_errors(env)


# ---------------------------------------------------------------------- invites


def _invite(
    fake: FakeServer, invitee: str, room_version: str = "10"
) -> tuple[str, str, dict[str, Any]]:
    room_id = f"!elsewhere:{fake.server_name}"
    pdu = {
        "type": "m.room.member",
        "sender": fake.user("mallory"),
        "state_key": invitee,
        "content": {"membership": "invite"},
        "room_id": room_id,
        "prev_events": ["$" + "a" * 43],
        "auth_events": ["$" + "b" * 43],
        "depth": 5,
        "origin_server_ts": 1_700_000_000_000,
    }
    signed = engine_events.sign_event(pdu, room_version, fake.server_name, fake.key)
    return room_id, engine_events.compute_event_id(signed, room_version), signed


async def test_GHSA_f3r3_h2mq_hx2h_malformed_invite_does_not_break_sync(env: Env) -> None:
    """GHSA-f3r3-h2mq-hx2h (Synapse, CVE-2024-52815): a crafted invite over federation
    broke the invitee's /sync.  Here the stripped state is full of junk: non-objects,
    wrong types, huge content.  The invite is stored with only well-formed stripped
    events; the invitee's /sync keeps working and shows the invite."""
    async with env.node.client() as client:
        bob = await client.register("bob")
        room_id, event_id, pdu = _invite(env.fake, bob.user_id)
        junk: list[Any] = [
            "string",
            17,
            None,
            [],
            {"type": 5, "state_key": "", "content": {}, "sender": env.fake.user("m")},
            {"type": "m.room.name", "state_key": None, "content": {"name": "x"}},
            {"type": "m.room.name", "state_key": "", "content": "not an object"},
            {"type": "m.room.topic", "state_key": "", "content": {"topic": "t" * 100_000},
             "sender": env.fake.user("m")},
            {"type": "m.room.name", "state_key": "", "content": {"name": "本物の名前"},
             "sender": env.fake.user("mallory")},
        ]  # fmt: skip
        junk += [{"type": "x.junk", "state_key": str(i), "content": {}} for i in range(2000)]
        answer = await env.fake.request(
            env.node,
            "PUT",
            f"/_matrix/federation/v2/invite/{room_id}/{event_id}",
            {"room_version": "10", "event": pdu, "invite_room_state": junk},
        )
        assert answer.status == 200, answer
        synced = await bob.sync()
        invite = synced["rooms"]["invite"][room_id]["invite_state"]["events"]
        assert {"type": "m.room.name", "state_key": "", "content": {"name": "本物の名前"},
                "sender": env.fake.user("mallory")} in invite  # fmt: skip
        assert all(
            isinstance(e, dict)
            and isinstance(e.get("type"), str)
            and isinstance(e.get("state_key"), str)
            and isinstance(e.get("content"), dict)
            for e in invite
        )
        assert len(json.dumps(invite)) < 65_536
        assert any(e["type"] == "m.room.member" and e["state_key"] == bob.user_id for e in invite)
        # Later syncs keep working too.
        await env.alice.send(env.room_id, "still syncing")
        assert isinstance((await bob.sync(since=synced["next_batch"]))["next_batch"], str)
        assert logged(env, "invite_room_state", event_id)


@pytest.mark.parametrize("version", ["999", None, 10, ""])
async def test_invite_with_unknown_room_version_is_refused(env: Env, version: Any) -> None:
    async with env.node.client() as client:
        bob = await client.register("bob")
        room_id, event_id, pdu = _invite(env.fake, bob.user_id)
        answer = await env.fake.request(
            env.node,
            "PUT",
            f"/_matrix/federation/v2/invite/{room_id}/{event_id}",
            {"room_version": version, "event": pdu, "invite_room_state": []},
        )
        assert answer.status == 400
        assert answer.body["errcode"] == "M_INCOMPATIBLE_ROOM_VERSION"
        assert room_id not in (await bob.sync())["rooms"].get("invite", {})


async def test_v1_invite_is_taken_as_room_version_1_and_refused(env: Env) -> None:
    """The deprecated v1 /invite names no room version: the room is taken to be of version
    1 (as Synapse does), which this node does not support, so it is refused in the v2
    form's words and no invite reaches the user."""
    async with env.node.client() as client:
        bob = await client.register("bob")
        room_id, event_id, pdu = _invite(env.fake, bob.user_id)
        answer = await env.fake.request(
            env.node, "PUT", f"/_matrix/federation/v1/invite/{room_id}/{event_id}", pdu
        )
        assert answer.status == 400
        assert answer.body["errcode"] == "M_INCOMPATIBLE_ROOM_VERSION"
        assert answer.body["room_version"] == "1"
        garbage = await env.fake.request(
            env.node, "PUT", f"/_matrix/federation/v1/invite/{room_id}/{event_id}", [1]
        )
        assert garbage.status == 400 and garbage.body["errcode"] == "M_BAD_JSON"
        assert room_id not in (await bob.sync())["rooms"].get("invite", {})


async def test_GHSA_hxmp_pqch_c8mm_room_id_in_path_must_match_event(env: Env) -> None:
    """GHSA-hxmp-pqch-c8mm (Synapse): a /send_join, /send_leave or /invite whose path names
    another room than the event injected malformed events.  Each is refused (400)."""
    async with env.node.client() as client:
        bob = await client.register("bob")
        other = await env.alice.create_room(preset="public_chat")
        _, event_id, pdu = _invite(env.fake, bob.user_id)
        answer = await env.fake.request(
            env.node,
            "PUT",
            f"/_matrix/federation/v2/invite/{other}/{event_id}",
            {"room_version": "10", "event": pdu, "invite_room_state": []},
        )
        assert answer.status == 400 and answer.body["errcode"] == "M_BAD_JSON"
        made = await env.fake.request(
            env.node,
            "GET",
            f"/_matrix/federation/v1/make_join/{env.room_id}/{env.fake.user('zed')}?ver=10&ver=11&ver=12",
        )
        template = {**made.body["event"], "origin_server_ts": 1}
        signed = engine_events.sign_event(
            template, env.room.version, env.fake.server_name, env.fake.key
        )
        join_id = engine_events.compute_event_id(signed, env.room.version)
        answer = await env.fake.request(
            env.node, "PUT", f"/_matrix/federation/v2/send_join/{other}/{join_id}", signed
        )
        assert answer.status == 400 and answer.body["errcode"] == "M_BAD_JSON"
        assert await stored(env, join_id) is None
        other_room = await env.node.services.rooms.room(other)
        assert other_room is not None and env.fake.user("zed") not in other_room.members


@pytest.mark.parametrize("content", ["invite", ["membership", "join"], None, 7])
async def test_membership_events_with_non_object_content_are_refused(
    env: Env, content: Any
) -> None:
    """/invite and /send_join with an event whose content is not an object: 400, never a
    500 from reading a membership out of it."""
    async with env.node.client() as client:
        bob = await client.register("bob")
        room_id, _, pdu = _invite(env.fake, bob.user_id)
        unsigned = {k: v for k, v in pdu.items() if k not in ("signatures", "hashes")}
        event_id, bad = env.fake.sign(env.room, {**unsigned, "content": content})
        answer = await env.fake.request(
            env.node,
            "PUT",
            f"/_matrix/federation/v2/invite/{room_id}/{event_id}",
            {"room_version": "10", "event": bad, "invite_room_state": []},
        )
        assert answer.status == 400 and answer.body["errcode"] == "M_BAD_JSON", answer
        join = {
            "type": "m.room.member",
            "sender": env.fake.user("zed"),
            "state_key": env.fake.user("zed"),
            "content": content,
            "room_id": env.room_id,
            "prev_events": [env.room.head],
            "auth_events": env.room.auth_for("m.room.member", env.room.user_id, None),
            "depth": env.room.depth + 1,
            "origin_server_ts": 1,
        }
        join_id, signed = env.fake.sign(env.room, join)
        answer = await env.fake.request(
            env.node, "PUT", f"/_matrix/federation/v2/send_join/{env.room_id}/{join_id}", signed
        )
        assert answer.status == 400 and answer.body["errcode"] == "M_BAD_JSON", answer
        assert await stored(env, join_id) is None
        no_server_errors(env)


# ---------------------------------------------------------------------- server ACL


async def test_server_acl_denied_server_is_ignored_and_refused(env: Env) -> None:
    """After m.room.server_acl denies the fake server's host, its PDUs get a per-PDU error
    and are not stored, its EDUs are ignored, and make_join, backfill, get_missing_events,
    state, event_auth and event answer 403."""
    acl = {"allow": ["*"], "deny": ["127.0.0.1"], "allow_ip_literals": True}
    await env.alice.ok(
        "PUT", f"/_matrix/client/v3/rooms/{env.room_id}/state/m.room.server_acl/", acl
    )
    event_id, pdu = message(env, "after the ACL")
    typing = {
        "edu_type": "m.typing",
        "content": {"room_id": env.room_id, "user_id": env.room.user_id, "typing": True},
    }
    answer = await env.fake.send_transaction(env.node, "acl1", [pdu], [typing])
    assert answer.status == 200
    assert "server ACL" in answer.body["pdus"][event_id]["error"]
    assert await stored(env, event_id) is None
    synced = await env.alice.sync()
    ephemeral = synced["rooms"]["join"][env.room_id].get("ephemeral", {}).get("events", [])
    assert not any(e["type"] == "m.typing" and e["content"]["user_ids"] for e in ephemeral)
    head = env.room.state[("m.room.member", env.room.user_id)]  # our join: stored
    f1 = "/_matrix/federation/v1"
    for method, path, body in [
        ("GET", f"{f1}/make_join/{env.room_id}/{env.fake.user('x')}?ver=10&ver=11&ver=12", None),
        ("GET", f"{f1}/backfill/{env.room_id}?v={head}&limit=10", None),
        ("POST", f"{f1}/get_missing_events/{env.room_id}", {"earliest_events": [], "latest_events": [head]}),
        ("GET", f"{f1}/state_ids/{env.room_id}?event_id={head}", None),
        ("GET", f"{f1}/state/{env.room_id}?event_id={head}", None),
        ("GET", f"{f1}/event_auth/{env.room_id}/{head}", None),
        ("GET", f"{f1}/event/{head}", None),
        ("GET", f"{f1}/make_leave/{env.room_id}/{env.room.user_id}", None),
    ]:  # fmt: skip
        answer = await env.fake.request(env.node, method, path, body)
        assert answer.status == 403, (path, answer)
        assert answer.body["errcode"] == "M_FORBIDDEN"
    assert logged(env, "server ACL", event_id)
    no_server_errors(env)


# ---------------------------------------------------------------------- soft failure


async def test_soft_failed_event_of_banned_user_is_hidden(env: Env) -> None:
    """After alice bans the fake server's user, it sends a message whose prev_events point
    at an older part of the DAG (before the ban), where it was still joined.  The event
    passes auth against its own state but fails against the current state: soft-failed,
    stored but shown neither in /messages nor /sync, and not a forward extremity."""
    fork_point = env.room.head
    await env.alice.ok(
        "POST", f"/_matrix/client/v3/rooms/{env.room_id}/ban", {"user_id": env.room.user_id}
    )
    event_id, pdu = message(env, "from the past", prev_events=[fork_point])
    result = await send_one(env, "soft1", pdu)
    assert result == {event_id: {}}
    event = await stored(env, event_id)
    assert event is not None and event.soft_failed and event.rejected_reason is None
    await assert_not_accepted(env, event_id)
    room = await env.node.services.rooms.room(env.room_id)
    assert room is not None and event_id not in room.extremities
    assert logged(env, "soft-failing", event_id)


# ---------------------------------------------------------------------- SSRF


async def test_ssrf_guard_refuses_private_addresses(
    tmp_path: Path, db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """With allow_private_addresses false, a server name resolving to a loopback address
    is never contacted: a join via it fails, and a request it signs cannot be
    authenticated (its key cannot be fetched), so it gets 401."""
    caplog.set_level(logging.INFO)
    federation = FederationSettings(verify_tls=False, allow_private_addresses=False)
    async with (
        FakeServer(tmp_path / "fake") as fake,
        running_node(tmp_path / "node", db_url, tls=True, federation=federation) as node,
    ):
        async with node.client() as client:
            alice = await client.register("alice")
            answer = await alice.request(
                "POST",
                f"/_matrix/client/v3/join/!room:{fake.server_name}",
                {},
                params={"server_name": fake.server_name},
            )
            assert answer.status in (403, 404, 502), answer
            answer2 = await fake.send_transaction(node, "ssrf1", [])
            assert answer2.status == 401 and answer2.body["errcode"] == "M_UNAUTHORIZED"
        assert fake.requests == []
        assert any("private or loopback" in r.getMessage() for r in caplog.records)


# ---------------------------------------------------------------------- cross-room references


async def test_event_citing_another_rooms_events_is_rejected(env: Env) -> None:
    """An event for a private room the fake server is not in, whose prev_events and
    auth_events are events of the public room it did join (where its user is a member
    with a power level), must not borrow that room's state: it is rejected, as Synapse
    rejects auth events from a different room, and is not in the private room's
    state, timeline or /sync."""
    private = await env.alice.create_room(preset="private_chat", name="非公開")
    state = env.room.state
    borrowed_auth = env.room.auth_for("m.room.name", env.room.user_id, "")
    assert state[("m.room.member", env.room.user_id)] in borrowed_auth
    pdu = {
        "type": "m.room.name",
        "sender": env.room.user_id,
        "state_key": "",
        "content": {"name": "乗っ取り"},
        "room_id": private,
        "prev_events": [env.room.head],
        "auth_events": borrowed_auth,
        "depth": env.room.depth + 1,
        "origin_server_ts": 1_700_000_000_000,
    }
    event_id, signed = env.fake.sign(env.room, pdu)
    result = await send_one(env, "crossroom1", signed)
    assert list(result) == [event_id]
    event = await stored(env, event_id)
    assert event is not None and event.rejected_reason, event
    assert f"belongs to room '{env.room_id}'" in event.rejected_reason
    room = await env.node.services.rooms.room(private)
    assert room is not None and event_id not in room.state.values()
    name = await env.alice.ok("GET", f"/_matrix/client/v3/rooms/{private}/state/m.room.name")
    assert name == {"name": "非公開"}
    assert event_id not in await timeline_ids(env.alice, private)
    assert logged(env, "rejecting", event_id, "belongs to room")
    no_server_errors(env)


async def test_huge_event_id_lists_do_not_fail(env: Env) -> None:
    """get_missing_events with 40,000 event IDs (over PostgreSQL's 32,767 bind
    parameters) and a receipt EDU naming a 100 KB event ID: answered, never 500; the
    receipt is ignored."""
    path = f"/_matrix/federation/v1/get_missing_events/{env.room_id}"
    ids = [f"${i:043d}" for i in range(40_000)]
    answer = await env.fake.request(
        env.node, "POST", path, {"earliest_events": ids, "latest_events": ids, "limit": 10}
    )
    assert answer.status < 500, answer
    huge = "$" + "x" * 100_000
    receipt = {
        "edu_type": "m.receipt",
        "content": {env.room_id: {"m.read": {env.room.user_id: {"event_ids": [huge]}}}},
    }
    answer = await env.fake.send_transaction(env.node, "hugeid1", [], [receipt])
    assert answer.status == 200
    synced = await env.alice.sync()
    ephemeral = synced["rooms"]["join"][env.room_id].get("ephemeral", {}).get("events", [])
    assert not [e for e in ephemeral if e["type"] == "m.receipt"]
    assert logged(env, "ignored m.receipt EDU", env.fake.server_name)
    no_server_errors(env)


async def test_CVE_2018_12291_history_before_join_is_redacted_for_the_server(
    tmp_path: Path, db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """CVE-2018-12291 (Synapse): /get_missing_events served events without applying
    history visibility to the asking server.  In a room with history_visibility
    "joined", a server whose users joined later gets the earlier messages only
    redacted (content {}), from /backfill, /get_missing_events and /event alike, as
    Synapse's filter for servers does; messages after its join come in full."""
    caplog.set_level(logging.INFO)
    async with (
        running_node(tmp_path / "node", db_url, tls=True) as node,
        FakeServer(tmp_path / "fake") as fake,
    ):
        async with node.client() as client:
            alice = await client.register("alice")
            room_id = await alice.create_room(
                preset="public_chat",
                initial_state=[
                    {
                        "type": "m.room.history_visibility",
                        "state_key": "",
                        "content": {"history_visibility": "joined"},
                    }
                ],
            )
            secret = await alice.send(room_id, "参加前の秘密")
            room = await fake.join(node, room_id)
            after = await alice.send(room_id, "参加後の連絡")
            f1 = "/_matrix/federation/v1"
            answers = [
                await fake.request(node, "GET", f"{f1}/backfill/{room_id}?v={after}&limit=50"),
                await fake.request(
                    node,
                    "POST",
                    f"{f1}/get_missing_events/{room_id}",
                    {"earliest_events": [], "latest_events": [after], "limit": 50},
                ),
                await fake.request(node, "GET", f"{f1}/event/{secret}"),
            ]
            for answer in answers:
                assert answer.status == 200, answer
                text = json.dumps(answer.body, ensure_ascii=False)
                assert "参加前の秘密" not in text
                pdus = answer.body.get("pdus", answer.body.get("events"))
                by_id = {engine_events.compute_event_id(p, room.version): p for p in pdus}
                assert by_id[secret]["content"] == {}
                assert by_id[secret]["hashes"]  # still verifiable: signatures hold
                if after in by_id:
                    assert by_id[after]["content"]["body"] == "参加後の連絡"
        assert any(
            secret in r.getMessage() and "redacted (history visibility)" in r.getMessage()
            for r in caplog.records
        )


# ---------------------------------------------------------------------- more auth


async def test_banned_user_cannot_rejoin_through_a_crafted_send_join(env: Env) -> None:
    """make_join refuses a banned user, so a hostile server skips it and crafts the join
    itself for /send_join: the join fails auth, is answered 403 and stored only as
    rejected; the user stays banned and nothing is returned of the room's state."""
    await env.alice.ok(
        "POST", f"/_matrix/client/v3/rooms/{env.room_id}/ban", {"user_id": env.room.user_id}
    )
    f1 = "/_matrix/federation/v1"
    made = await env.fake.request(
        env.node,
        "GET",
        f"{f1}/make_join/{env.room_id}/{env.room.user_id}?ver=10&ver=11&ver=12",
    )
    assert made.status == 403 and made.body["errcode"] == "M_FORBIDDEN"
    room = await env.node.services.rooms.room(env.room_id)
    assert room is not None
    join_id, join = env.fake.build(
        env.room,
        "m.room.member",
        {"membership": "join"},
        state_key=env.room.user_id,
        prev_events=list(room.extremities),
        depth=room.depth + 1,
    )
    answer = await env.fake.request(
        env.node, "PUT", f"/_matrix/federation/v2/send_join/{env.room_id}/{join_id}", join
    )
    assert answer.status == 403 and answer.body["errcode"] == "M_FORBIDDEN", answer
    assert "state" not in answer.body
    event = await stored(env, join_id)
    assert event is None or event.rejected_reason
    room = await env.node.services.rooms.room(env.room_id)
    assert room is not None and room.members[env.room.user_id] == "ban"
    await assert_not_accepted(env, join_id)
    no_server_errors(env)


@pytest.mark.parametrize(
    "change",
    [
        {"ban": "50"},
        {"users_default": "0"},
        {"events": {"m.room.name": "0"}},
        {"notifications": {"room": "0"}},
        {"users": {"@mallory:example.org": True}},
    ],
)
async def test_power_levels_with_non_integer_values_are_rejected(
    env: Env, change: dict[str, Any]
) -> None:
    """Room versions 10+ require integer power levels (Synapse accepted strings such as
    "50" in older versions, which servers then compared differently).  Even from a
    user at power 100, a power levels event holding a string or boolean level is
    rejected and the room's power levels stay as they were."""
    state = await current_state(env)
    power = await stored(env, state[("m.room.power_levels", "")])
    promoted = dict(power.pdu["content"])
    promoted["users"] = {**promoted.get("users", {}), env.room.user_id: 100}
    await env.alice.ok(
        "PUT", f"/_matrix/client/v3/rooms/{env.room_id}/state/m.room.power_levels/", promoted
    )
    room = await env.node.services.rooms.room(env.room_id)
    assert room is not None
    before = room.state[("m.room.power_levels", "")]
    env.room.state[("m.room.power_levels", "")] = before
    content = {**promoted, **change}
    if "users" in change:
        content["users"] = {**promoted["users"], **change["users"]}
    event_id, pdu = env.fake.build(
        env.room,
        "m.room.power_levels",
        content,
        state_key="",
        prev_events=list(room.extremities),
        depth=room.depth + 1,
    )
    result = await send_one(env, f"pl-{next(iter(change))}", pdu)
    assert result == {event_id: {}}
    event = await stored(env, event_id)
    assert event is not None and event.rejected_reason, event
    assert (await current_state(env))[("m.room.power_levels", "")] == before
    await assert_not_accepted(env, event_id)
    assert logged(env, "rejecting", event_id)


async def test_request_for_another_destination_is_unauthorized(env: Env) -> None:
    """An X-Matrix header whose destination is another server (a request replayed from
    elsewhere) is refused with 401 before anything is processed."""
    from federation.xmatrix import authorization_header

    event_id, pdu = message(env, "replayed elsewhere", advance=False)
    path = f"{SEND}/elsewhere1"
    body = {"origin": env.fake.server_name, "origin_server_ts": 1, "pdus": [pdu], "edus": []}
    header = authorization_header(
        env.fake.server_name, env.fake.key, "other.example.org", "PUT", path, body
    )
    async with env.node.client() as client:
        answer = await client.request("PUT", path, body, headers={"Authorization": header})
    assert answer.status == 401 and answer.body["errcode"] == "M_UNAUTHORIZED"
    assert await stored(env, event_id) is None
