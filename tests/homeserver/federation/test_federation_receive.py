"""The federation receive path: gaps, slow servers and batched persistence.

A fake remote server (real HTTPS on loopback) joins a room on a Kairan node and pushes
events whose prev events the node has never seen; handlers installed on the fake decide
how it answers the node's /get_missing_events, /state_ids, /event and /event_auth.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from aiohttp import web
from sqlalchemy import event, select

from homeserver.storage import events as event_store
from homeserver.storage import redactions as redaction_store
from homeserver.storage.database import open_database
from homeserver.storage.schema import events as events_table
from tests.homeserver.federation import test_federation_hostile
from tests.homeserver.federation.test_federation import eventually
from tests.homeserver.federation.test_federation_hostile import (
    Env,
    assert_accepted,
    assert_not_accepted,
    logged,
    message,
    no_server_errors,
    send_one,
    stored,
)

env = test_federation_hostile.env  # the fixture: a fake server joined to alice's room

F1 = "/_matrix/federation/v1"
NOT_DIVULGING = "Your server isn't divulging details about prev_events referenced in this event."


def answer_events(env: Env, found: dict[str, dict[str, Any]]) -> Any:
    """A /event handler serving ``found`` (others: 404)."""

    async def handler(request: web.Request) -> web.StreamResponse:
        event_id = request.path.rsplit("/", 1)[1]
        if event_id not in found:
            return web.json_response({"errcode": "M_NOT_FOUND", "error": "no"}, status=404)
        return web.json_response(
            {"origin": env.fake.server_name, "origin_server_ts": 0, "pdus": [found[event_id]]}
        )

    return handler


def missing_events(pdus: list[dict[str, Any]], bodies: list[Any] | None = None) -> Any:
    """A /get_missing_events answer; the request bodies are kept in ``bodies``."""

    async def handler(request: web.Request) -> web.StreamResponse:
        if bodies is not None:
            bodies.append(await request.json())
        return web.json_response({"events": pdus})

    return handler


def asked(env: Env, prefix: str) -> bool:
    return any(path.startswith(prefix) for _, path in env.fake.requests)


# ---------------------------------------------------------------------- slow servers


async def test_slow_server_does_not_hold_up_local_senders(env: Env) -> None:
    """While the node waits on a server's /get_missing_events (for a pushed event with
    an unknown prev event), local users of the room still send messages and state
    events at once: the network is used before the room's lock is taken.  When the
    server finally answers without the missing event, the pushed event is dropped."""
    release = asyncio.Event()

    async def slow(request: web.Request) -> web.StreamResponse:
        await release.wait()
        return web.json_response({"events": []})

    env.fake.handlers[f"{F1}/get_missing_events/"] = slow
    message(env, "never sent to the node")
    event_id, pdu = message(env, "after a gap")
    sending = asyncio.create_task(env.fake.send_transaction(env.node, "slow1", [pdu]))
    try:

        async def waiting() -> bool:
            return asked(env, f"{F1}/get_missing_events/")

        await eventually(waiting)
        started = time.monotonic()
        sent = await env.alice.send(env.room_id, "ローカルの連絡")
        await env.alice.ok(
            "PUT",
            f"/_matrix/client/v3/rooms/{env.room_id}/state/m.room.topic/",
            {"topic": "待たされない"},
        )
        elapsed = time.monotonic() - started
        assert elapsed < 3.0, elapsed  # a locked room would wait for the fetch (10 s)
        assert not sending.done()
        assert sent in [e["event_id"] for e in (await env.alice.sync())["rooms"]["join"][env.room_id]["timeline"]["events"]]  # fmt: skip
    finally:
        release.set()
    answer = await sending
    assert answer.status == 200
    assert answer.body["pdus"] == {event_id: {"error": NOT_DIVULGING}}
    assert await stored(env, event_id) is None
    assert logged(env, "dropped PDU", event_id)
    no_server_errors(env)


# ---------------------------------------------------------------------- gaps


async def test_pulled_event_whose_earlier_state_cannot_be_fetched_is_dropped(env: Env) -> None:
    """The pushed event's prev event comes back from /get_missing_events, but its own
    prev event is unknown and the server refuses /state_ids for it.  As Synapse does,
    the pulled event is dropped (never checked against the current state instead), and
    so is the pushed event, whose prev event is then still missing: neither is stored."""
    message(env, "zero: withheld")
    one_id, one = message(env, "one: pulled")
    two_id, two = message(env, "two: pushed")
    env.fake.handlers[f"{F1}/get_missing_events/"] = missing_events([one])
    result = await send_one(env, "gap1", two)
    assert result == {two_id: {"error": NOT_DIVULGING}}
    assert asked(env, f"{F1}/state_ids/")
    for event_id in (one_id, two_id):
        assert await stored(env, event_id) is None
        await assert_not_accepted(env, event_id)
    assert logged(env, "dropping pulled event", one_id, "state_ids")
    no_server_errors(env)


async def test_get_missing_events_failing_drops_the_pushed_event(env: Env) -> None:
    """/get_missing_events answers 404 (the fake's default): the pushed event is dropped,
    not stored, and the server is not asked for state (that is only for pulled events)."""
    message(env, "withheld")
    event_id, pdu = message(env, "orphan")
    result = await send_one(env, "gap2", pdu)
    assert result == {event_id: {"error": NOT_DIVULGING}}
    assert await stored(env, event_id) is None
    assert not asked(env, f"{F1}/state_ids/")
    assert logged(env, "get_missing_events", "failed")


async def test_gap_is_bridged_with_the_state_at_the_missing_event(env: Env) -> None:
    """/get_missing_events gives the pushed event's prev event, whose own prev event the
    server gives with /state_ids and /event: the gap is bridged, both events are
    accepted and shown, and the withheld event is kept as an outlier."""
    zero_id, zero = message(env, "zero: fetched as an outlier")
    state_at_zero = list(env.room.state.values())
    one_id, one = message(env, "one: pulled")
    two_id, two = message(env, "two: pushed")
    requests: list[Any] = []
    env.fake.handlers[f"{F1}/get_missing_events/"] = missing_events([one], requests)

    async def state_ids(request: web.Request) -> web.StreamResponse:
        assert request.query["event_id"] == zero_id
        return web.json_response({"pdu_ids": state_at_zero, "auth_chain_ids": []})

    env.fake.handlers[f"{F1}/state_ids/"] = state_ids
    env.fake.handlers[f"{F1}/event/"] = answer_events(env, {zero_id: zero})
    result = await send_one(env, "gap3", two)
    assert result == {two_id: {}}
    for event_id in (one_id, two_id):
        await assert_accepted(env, event_id)
    outlier = await stored(env, zero_id)
    assert outlier is not None and outlier.outlier
    # No deeper back than where the node's history of the room begins (as Synapse asks).
    async with env.node.services.db.read() as conn:
        min_depth = await event_store.room_min_depth(conn, env.room_id)
    assert min_depth > 0
    assert [r["min_depth"] for r in requests] == [min_depth]
    no_server_errors(env)


async def test_event_whose_auth_events_cannot_be_fetched_is_dropped(env: Env) -> None:
    """An event citing an auth event the node does not know, which /event_auth does not
    give either: dropped as Synapse does (it may be valid; it is not stored rejected)."""
    unknown = "$" + "u" * 43
    auth = [*env.room.auth_for("m.room.message", env.room.user_id, None), unknown]
    event_id, pdu = message(env, "cites the unknown", auth_events=auth)
    result = await send_one(env, "auth-missing", pdu)
    assert "auth events could not be found" in result[event_id]["error"]
    assert await stored(env, event_id) is None
    assert asked(env, f"{F1}/event_auth/")


# ---------------------------------------------------------------------- batches


@contextmanager
def counting(env: Env) -> Iterator[dict[str, int]]:
    """Statements on the node's database while the block runs, and commits of the
    transactions among them that stored events."""
    engine = env.node.services.rooms.db.engine.sync_engine
    counts = {"statements": 0, "commits": 0}
    storing: set[int] = set()

    def statement(conn: Any, _cursor: Any, text: str, *_: Any) -> None:
        counts["statements"] += 1
        if text.startswith("INSERT INTO events "):
            storing.add(id(conn))

    def commit(conn: Any) -> None:
        if id(conn) in storing:
            storing.discard(id(conn))
            counts["commits"] += 1

    event.listen(engine, "before_cursor_execute", statement)
    event.listen(engine, "commit", commit)
    try:
        yield counts
    finally:
        event.remove(engine, "before_cursor_execute", statement)
        event.remove(engine, "commit", commit)


async def test_transaction_is_persisted_in_one_write(env: Env, db_url: str) -> None:
    """50 messages in one /send are persisted with one commit for the events (plus the
    stored transaction answer) and a bounded number of statements, not one transaction
    per event; each is shown in order.  Everything is committed before the 200: a fresh
    database connection (as after a crash of the node) sees all 50 at once."""
    pdus = [message(env, f"一括 {i}") for i in range(50)]
    with counting(env) as counts:
        answer = await env.fake.send_transaction(env.node, "batch1", [p for _, p in pdus])
    assert answer.status == 200
    assert answer.body["pdus"] == {event_id: {} for event_id, _ in pdus}
    assert counts["commits"] == 1, counts  # the 50 events in one transaction
    assert counts["statements"] <= 20, counts
    other = await open_database(db_url)
    try:
        async with other.read() as conn:
            rows = await conn.execute(
                select(events_table.c.event_id, events_table.c.outlier).where(
                    events_table.c.event_id.in_([e for e, _ in pdus])
                )
            )
            found = {r.event_id: r.outlier for r in rows}
    finally:
        await other.close()
    assert found == {event_id: False for event_id, _ in pdus}
    page = await env.alice.ok(
        "GET",
        f"/_matrix/client/v3/rooms/{env.room_id}/messages",
        params={"dir": "b", "limit": "60"},
    )
    bodies = [
        e["content"]["body"] for e in reversed(page["chunk"]) if e["type"] == "m.room.message"
    ]
    assert bodies == [f"一括 {i}" for i in range(50)]
    room = await env.node.services.rooms.room(env.room_id)
    assert room is not None and room.extremities == [pdus[-1][0]]
    no_server_errors(env)


async def test_batch_with_state_changes_and_a_rejected_event(env: Env) -> None:
    """One /send mixing a message, a state change (the fake user's display name), an
    event rejected by the auth rules (a rename by a user without the power) and a message
    built on the rejected event: the accepted ones are shown and the state changes; the
    rejected one is stored rejected; the message after it (whose state before is the
    state before the rejected event) is accepted."""
    name_before = env.room.state[("m.room.name", "")]
    first_id, first = message(env, "before")
    member_id, member = env.fake.build(
        env.room, "m.room.member", {"membership": "join", "displayname": "マロリー"},
        state_key=env.room.user_id,
    )  # fmt: skip
    name_id, name = env.fake.build(env.room, "m.room.name", {"name": "乗っ取り"}, state_key="")
    after_id, after = message(env, "after the rejected rename")
    assert after["prev_events"] == [name_id]
    answer = await env.fake.send_transaction(env.node, "mixed1", [first, member, name, after])
    assert answer.status == 200
    assert answer.body["pdus"] == {first_id: {}, member_id: {}, name_id: {}, after_id: {}}
    rejected = await stored(env, name_id)
    assert rejected is not None and rejected.rejected_reason
    await assert_not_accepted(env, name_id)
    for event_id in (first_id, member_id, after_id):
        await assert_accepted(env, event_id)
    room = await env.node.services.rooms.room(env.room_id)
    assert room is not None
    assert room.state[("m.room.name", "")] == name_before
    assert room.state[("m.room.member", env.room.user_id)] == member_id
    assert set(room.extremities) == {member_id, after_id}  # a rejected event is none
    members = await env.alice.ok("GET", f"/_matrix/client/v3/rooms/{env.room_id}/joined_members")
    assert members["joined"][env.room.user_id]["display_name"] == "マロリー"
    no_server_errors(env)


async def test_redaction_of_another_servers_event_needs_the_power(env: Env) -> None:
    """Room versions 3+ have no auth rule for redactions, so a redaction by a user at power
    0 is accepted; as Synapse does, it is applied to an event of another server's user only
    when its sender has the redact power.  Here the fake server's user redacts its own
    message (sent in the same /send: applied) and one of alice's (not applied)."""
    alice_id = await env.alice.send(env.room_id, "消さないで")
    own_id, own = message(env, "自分の発言")
    redact_own_id, redact_own = env.fake.build(env.room, "m.room.redaction", {"redacts": own_id})
    redact_alice_id, redact_alice = env.fake.build(
        env.room, "m.room.redaction", {"redacts": alice_id}
    )
    answer = await env.fake.send_transaction(env.node, "redact1", [own, redact_own, redact_alice])
    assert answer.status == 200
    assert answer.body["pdus"] == {own_id: {}, redact_own_id: {}, redact_alice_id: {}}
    own_event = await stored(env, own_id)
    assert own_event is not None and own_event.redacted_by == redact_own_id
    assert own_event.pdu["content"] == {}
    alice_event = await stored(env, alice_id)
    assert alice_event is not None and alice_event.redacted_by is None
    page = await env.alice.ok(
        "GET", f"/_matrix/client/v3/rooms/{env.room_id}/messages", params={"dir": "b"}
    )
    contents = {e["event_id"]: e["content"] for e in page["chunk"]}
    assert contents[own_id] == {}
    assert contents[alice_id]["body"] == "消さないで"
    assert logged(env, "not applying redaction", redact_alice_id)
    no_server_errors(env)


async def test_redaction_that_arrives_before_its_target_is_applied_when_it_comes(
    env: Env,
) -> None:
    """A redaction can reach a server before the event it redacts (they may be on
    different branches of the room's graph).  It waits, and the target is stored redacted
    when it arrives, as Synapse shows such an event redacted."""
    target_id, target = env.fake.build(
        env.room, "m.room.message", {"msgtype": "m.text", "body": "後から届く"}, advance=False
    )
    redaction_id, redaction = env.fake.build(env.room, "m.room.redaction", {"redacts": target_id})
    first = await env.fake.send_transaction(env.node, "late1", [redaction])
    assert first.body["pdus"] == {redaction_id: {}}
    assert await stored(env, target_id) is None
    second = await env.fake.send_transaction(env.node, "late2", [target])
    assert second.body["pdus"] == {target_id: {}}
    event = await stored(env, target_id)
    assert event is not None and event.redacted_by == redaction_id
    assert event.pdu["content"] == {}
    page = await env.alice.ok(
        "GET", f"/_matrix/client/v3/rooms/{env.room_id}/messages", params={"dir": "b"}
    )
    contents = {e["event_id"]: e["content"] for e in page["chunk"]}
    assert contents[target_id] == {}
    async with env.node.services.db.read() as conn:
        # Applied once: nothing is left waiting.
        assert await redaction_store.take_pending_redactions(conn, [target_id]) == []
    no_server_errors(env)


async def test_same_events_in_concurrent_transactions_are_stored_once(env: Env) -> None:
    """Two transactions carrying the same ten events at once (as two servers relaying
    them might): both are answered with success for every event, each event is stored
    once and shown once, and the room's forward extremity is the last of them."""
    pdus = [message(env, f"並行 {i}") for i in range(10)]
    first, second = await asyncio.gather(
        env.fake.send_transaction(env.node, "twice1", [p for _, p in pdus]),
        env.fake.send_transaction(env.node, "twice2", [p for _, p in pdus]),
    )
    for answer in (first, second):
        assert answer.status == 200
        assert answer.body["pdus"] == {event_id: {} for event_id, _ in pdus}
    for event_id, _ in pdus:
        assert await test_federation_hostile.copies_in_db(env, event_id) == 1
    shown = await test_federation_hostile.timeline_ids(env.alice, env.room_id)
    assert all(shown.count(event_id) == 1 for event_id, _ in pdus)
    room = await env.node.services.rooms.room(env.room_id)
    assert room is not None and room.extremities == [pdus[-1][0]]
    no_server_errors(env)
