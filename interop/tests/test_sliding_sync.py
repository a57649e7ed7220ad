"""Simplified Sliding Sync (MSC4186), differential: the same requests to Synapse and Kairan.

Its own harness (not per pair): one Synapse node and one Kairan node, whatever ``--pairs``
selects, each with four local users.  On each node, one after the other, the same story is
played and every sliding sync answer is normalised (:mod:`interop.tests.sliding_support`:
IDs, tokens and timestamps mapped away); then Kairan's answers must equal Synapse's, which
is the reference (Element X speaks what Synapse serves).

Set-up: alice owns 12 named rooms (a message each); bob and carol join two of them and talk
(one message mentions alice); bob makes an unnamed group room with alice and carol and a DM
with alice (``m.direct`` set by alice); dave invites alice to a named room she does not
join; alice then talks in one of her rooms, so the recency order is fixed.  The steps, named
so in the recorded answers:

1. the first request on connection ``room-list``: list ``all`` (ranges [[0, 9]],
   timeline_limit 3, required_state with ``$LAZY`` and ``$ME`` members), list ``dms``
   (``is_dm`` filter), a room subscription with ``*``/``*`` to a room outside the window,
   and the account_data, receipts, typing, to_device and e2ee extensions;
2. bob joins the subscribed room, talks, types and sends a receipt there, carol and alice
   talk: the incremental request with ``pos`` answers just those rooms;
3. a long-poll (``timeout``) is woken by a message of carol's;
4. positions that are not the connection's: a superseded one, one of another connection,
   another user's, and a malformed one;
5. the current position still works after those;
6. the node restarts, carol talks, and the position from before the restart goes on;
7. a second connection as Element X opens for encryption (only the to_device and e2ee
   extensions), and a to-device message from bob reaches it.

After each answer alice's unread counts are read from /sync v2 too: Synapse's sliding sync
counts are placeholders (always 0), so its /sync v2 counts are the reference for them.

Synapse needs no setting for this: it serves the endpoint by default
(``experimental_features.msc3575_enabled`` defaults to true in the pinned release).
"""

from __future__ import annotations

import asyncio
import copy
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from interop.client import Client, JsonDict, MatrixError
from interop.harness import Harness, Node
from interop.tests import sliding_support as norm

CONN = "room-list"
V2_COUNTS = " (unread counts of /sync v2)"
V2_COUNTS_FILTER: JsonDict = {
    "room": {"timeline": {"limit": 1}, "state": {"types": []}, "ephemeral": {"types": []}},
    "presence": {"types": []},
}
NAMED_ROOMS = 12
ENCRYPTION_EXTENSIONS: JsonDict = {"to_device": {"enabled": True}, "e2ee": {"enabled": True}}

ALL_LIST: JsonDict = {
    "ranges": [[0, 9]],
    "timeline_limit": 3,
    "required_state": [
        ["m.room.name", ""],
        ["m.room.avatar", ""],
        ["m.room.create", ""],
        ["m.room.encryption", ""],
        ["m.room.member", "$LAZY"],
        ["m.room.member", "$ME"],
    ],
}
DM_LIST: JsonDict = {
    "ranges": [[0, 9]],
    "timeline_limit": 1,
    "required_state": [["m.room.member", "$ME"]],
    "filters": {"is_dm": True},
}
EXTENSIONS: JsonDict = {
    "account_data": {"enabled": True},
    "receipts": {"enabled": True},
    "typing": {"enabled": True},
    "to_device": {"enabled": True},
    "e2ee": {"enabled": True},
}


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[Harness, Node, Node]]:
    """One Synapse node (the reference) and one Kairan node, started together."""
    harness = Harness()
    try:
        synapse = harness.add_synapse("S-synapse")
        kairan = harness.add_kairan("K-kairan")
        harness.start_all()
        yield harness, synapse, kairan
    finally:
        harness.close()


@dataclass
class Story:
    """One node's run: its users, the scenario's labels for its IDs, and what it answered."""

    node: Node
    harness: Harness
    names: norm.Names = field(default_factory=norm.Names)
    clients: dict[str, Client] = field(default_factory=dict)
    rooms: dict[str, str] = field(default_factory=dict)
    answers: dict[str, Any] = field(default_factory=dict)

    async def user(self, role: str) -> Client:
        client = Client(self.node.base_url, self.harness.certs.ca, name=role)
        self.clients[role] = client
        await client.register(f"{role}-{uuid.uuid4().hex[:8]}")
        self.names.add_user(role, client.user_id)
        return client

    def room(self, label: str, room_id: str) -> str:
        self.rooms[label] = room_id
        self.names.add_room(label, room_id)
        return room_id

    def body(self, subscribed: str) -> JsonDict:
        return {
            "conn_id": CONN,
            "lists": {"all": ALL_LIST, "dms": DM_LIST},
            "room_subscriptions": {
                self.rooms[subscribed]: {"timeline_limit": 2, "required_state": [["*", "*"]]}
            },
            "extensions": EXTENSIONS,
        }

    async def record(self, step: str, answer: JsonDict) -> None:
        """Keep the normalised answer, and alice's unread counts from /sync v2 just after."""
        self.answers[step] = norm.response(self.names, answer)
        # Synapse answers a repeated /sync with the same parameters from a cache (for 2
        # minutes by default: stale counts), so every probe's filter is a new one.
        probe = copy.deepcopy(V2_COUNTS_FILTER)
        probe["room"]["timeline"]["not_types"] = [f"org.example.nonce.{uuid.uuid4().hex}"]
        v2 = await self.clients["alice"].sync(None, filter_json=probe)
        self.answers[step + V2_COUNTS] = {
            self.names.room(room_id): room.get("unread_notifications")
            for room_id, room in sorted(v2.get("rooms", {}).get("join", {}).items())
        }

    async def close(self) -> None:
        for client in self.clients.values():
            await client.close()


async def populate(story: Story) -> None:
    """Step 1: the users, their rooms and messages, in an order that fixes recency."""
    alice, bob, carol, dave = [await story.user(r) for r in ("alice", "bob", "carol", "dave")]
    for i in range(NAMED_ROOMS):
        label = f"r{i:02}"
        room_id = story.room(label, await alice.create_room(name=f"room {i:02}"))
        await alice.send_text(room_id, f"first in {label}")
    for label in ("r03", "r05"):
        await alice.invite(story.rooms[label], bob.user_id)
        await bob.join(story.rooms[label])
    await alice.invite(story.rooms["r05"], carol.user_id)
    await carol.join(story.rooms["r05"])
    await bob.send(
        story.rooms["r03"],
        "m.room.message",
        {
            "msgtype": "m.text",
            "body": "a word for alice",
            "m.mentions": {"user_ids": [alice.user_id]},
        },
    )
    await bob.send_text(story.rooms["r05"], "bob in r05 #1")
    await bob.send_text(story.rooms["r05"], "bob in r05 #2")

    group = story.room(
        "group", await bob.create_room(preset="private_chat", invite=[alice.user_id, carol.user_id])
    )
    await alice.join(group)
    await carol.join(group)
    await carol.send_text(group, "carol in the group")

    dm = story.room(
        "dm",
        await bob.create_room(
            preset="trusted_private_chat", is_direct=True, invite=[alice.user_id]
        ),
    )
    await alice.join(dm)
    await alice.set_account_data("m.direct", {bob.user_id: [dm]})
    await bob.send_text(dm, "hi alice, just us")

    story.room(
        "invite",
        await dave.create_room(name="invite room", preset="private_chat", invite=[alice.user_id]),
    )
    await alice.send_text(story.rooms["r01"], "alice bumps r01")


async def converse(story: Story) -> None:
    """Steps 2-5 on one node; every answer (or error) recorded under the step's name."""
    alice, bob, carol = story.clients["alice"], story.clients["bob"], story.clients["carol"]
    body = story.body("r07")

    first = await alice.sliding_sync(body, timeout_ms=0)
    await story.record("1 first request", first)

    r07 = story.rooms["r07"]
    await alice.invite(r07, bob.user_id)
    await bob.join(r07)
    wake = await bob.send_text(r07, "bob wakes r07")
    await bob.receipt(r07, wake)
    await bob.typing(r07, True)
    await carol.send_text(story.rooms["group"], "carol again")
    await alice.send_text(story.rooms["r00"], "alice in r00")
    second = await alice.sliding_sync(body, pos=first["pos"], timeout_ms=0)
    await story.record("2 incremental", second)

    # The long-poll is in flight before carol talks: its answer must be her message (a
    # server that answered at once would answer nothing new, which the comparison shows).
    poll = asyncio.create_task(alice.sliding_sync(body, pos=second["pos"], timeout_ms=20_000))
    await asyncio.sleep(1.0)
    story.answers["3 long-poll returned before the message"] = poll.done()
    await carol.send_text(story.rooms["r05"], "carol wakes the poll")
    third = await poll
    await story.record("3 long-poll", third)

    async def error_of(client: Client, pos: str, conn_id: str = CONN) -> JsonDict:
        try:
            await client.sliding_sync({**body, "conn_id": conn_id}, pos=pos, timeout_ms=0)
        except MatrixError as e:
            return {"status": e.status, "errcode": e.errcode}
        return {"status": 200}

    story.answers["4 superseded pos"] = await error_of(alice, first["pos"])
    story.answers["4 pos of another connection"] = await error_of(alice, third["pos"], "other")
    story.answers["4 another user's pos"] = await error_of(bob, third["pos"])
    story.answers["4 malformed pos"] = await error_of(alice, "not-a-position")
    again = await alice.sliding_sync(body, pos=third["pos"], timeout_ms=0)
    await story.record("5 current pos after the errors", again)

    # The node restarts (SIGTERM, same data); the connection goes on where it was.
    await asyncio.to_thread(story.harness.stop, story.node)
    await asyncio.to_thread(story.harness.start, story.node)
    await carol.send_text(story.rooms["group"], "carol after the restart")
    restarted = await alice.sliding_sync(body, pos=again["pos"], timeout_ms=0)
    await story.record("6 pos kept over a restart", restarted)

    # Element X's second connection: encryption, with only the to_device and e2ee extensions.
    crypto: JsonDict = {"conn_id": "encryption", "extensions": ENCRYPTION_EXTENSIONS}
    opened = await alice.sliding_sync(crypto, timeout_ms=0)
    await story.record("7 encryption connection", opened)
    message = {"messages": {alice.user_id: {alice.device_id: {"note": "for alice's device"}}}}
    await bob.request("PUT", f"/sendToDevice/org.example.interop/{uuid.uuid4().hex}", message)
    delivered = await alice.sliding_sync(crypto, pos=opened["pos"], timeout_ms=0)
    await story.record("7 encryption connection, a to-device message", delivered)


async def play(harness: Harness, node: Node) -> dict[str, Any]:
    story = Story(node, harness)
    try:
        await populate(story)
        await converse(story)
    except (MatrixError, AssertionError) as e:
        raise AssertionError(f"{node.kind}: {e}\n{node.log_tail(30)}") from e
    finally:
        await story.close()
    return story.answers


async def test_sliding_sync_kairan_answers_as_synapse(
    servers: tuple[Harness, Node, Node],
) -> None:
    harness, synapse, kairan = servers
    answers = await play(harness, synapse)
    _reference_holds(answers)
    expected = with_real_counts(answers)
    actual = await play(harness, kairan)
    found = norm.differences(expected, actual)
    assert not found, (
        f"Kairan's sliding sync differs from Synapse's in {len(found)} places:\n" + "\n".join(found)
    )


def with_real_counts(answers: dict[str, Any]) -> dict[str, Any]:
    """Synapse's answers with its placeholder notification counts replaced by real ones.

    Synapse's sliding sync always answers ``notification_count`` and ``highlight_count``
    0 (a placeholder: "TODO: These are just dummy values", handlers/sliding_sync); the
    reference for a joined room is what Synapse's /sync v2 says for it at that moment.
    """
    expected = copy.deepcopy(answers)
    for step, answer in expected.items():
        counts = answers.get(step + V2_COUNTS)
        if not isinstance(answer, dict) or counts is None:
            continue
        for label, room in answer["rooms"].items():
            unread = counts.get(label)
            if unread is not None and "notification_count" in room:
                room["notification_count"] = unread.get("notification_count", 0)
                room["highlight_count"] = unread.get("highlight_count", 0)
    return expected


def _reference_holds(answers: dict[str, Any]) -> None:
    """What the story must show on Synapse, so that equal answers mean something."""
    first = answers["1 first request"]
    order = first["lists"]["all"]["ops"][0]["room_ids"]
    assert first["lists"]["all"]["count"] == NAMED_ROOMS + 3, first["lists"]
    assert order == [
        "r01", "invite", "dm", "group", "r05", "r03", "r11", "r10", "r09", "r08"
    ], order  # fmt: skip
    assert first["lists"]["dms"]["ops"][0]["room_ids"] == ["dm"], first["lists"]["dms"]
    assert "r07" in first["rooms"] and "r07" not in order, first["rooms"].keys()
    assert first["rooms"]["invite"]["invite_state"], first["rooms"]["invite"]
    assert first["rooms"]["group"]["heroes"] == [
        {"user_id": "bob", "displayname": "bob"}, {"user_id": "carol", "displayname": "carol"}
    ], first["rooms"]["group"]  # fmt: skip
    counts = answers["1 first request" + V2_COUNTS]
    assert counts["r03"] == {"notification_count": 1, "highlight_count": 1}, counts
    assert counts["r05"] == {"notification_count": 2, "highlight_count": 0}, counts
    second = answers["2 incremental"]
    assert set(second["rooms"]) == {"r07", "group", "r00"}, second["rooms"].keys()
    assert second["extensions"]["typing"]["rooms"] == {"r07": ["bob"]}, second["extensions"]
    third = answers["3 long-poll"]
    bodies = [e.get("content", {}).get("body") for e in third["rooms"]["r05"]["timeline"]]
    assert bodies == ["carol wakes the poll"], third["rooms"]["r05"]
    assert answers["3 long-poll returned before the message"] is False
    for step in ("4 superseded pos", "4 pos of another connection", "4 another user's pos"):
        assert answers[step] == {"status": 400, "errcode": "M_UNKNOWN_POS"}, answers[step]
    assert answers["5 current pos after the errors"]["rooms"] == {}, answers
    sixth = answers["6 pos kept over a restart"]
    bodies = [e.get("content", {}).get("body") for e in sixth["rooms"]["group"]["timeline"]]
    assert bodies == ["carol after the restart"], sixth["rooms"]
    to_device = answers["7 encryption connection, a to-device message"]["extensions"]["to_device"]
    assert to_device["events"] == 1, answers["7 encryption connection, a to-device message"]
