"""Notification counts per thread (the spec's threaded read receipts, as Synapse and Element
use them): with ``unread_thread_notifications`` in the sync filter, the main timeline's
counts come apart from each thread's; a threaded receipt reads only its thread (``main``
for the main timeline), an unthreaded one reads everything up to it; a reaction to an
event in a thread belongs to that thread.  Responses are validated against the OpenAPI."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from tests.homeserver.client import User
from tests.homeserver.conftest import Node
from tests.homeserver.openapi import ValidatingClient
from tests.homeserver.push.test_push_notifications import V3, send, text

THREADS = json.dumps({"room": {"timeline": {"unread_thread_notifications": True}}})


def in_thread(root: str, body: str) -> dict[str, Any]:
    return text(
        body,
        **{
            "m.relates_to": {
                "rel_type": "m.thread",
                "event_id": root,
                "is_falling_back": True,
                "m.in_reply_to": {"event_id": root},
            }
        },
    )


async def receipt(user: User, room_id: str, event_id: str, thread_id: str | None) -> None:
    path = f"{V3}/rooms/{quote(room_id, safe='')}/receipt/m.read/{quote(event_id, safe='')}"
    await user.ok("POST", path, {} if thread_id is None else {"thread_id": thread_id})


async def counts(user: User, room_id: str, *, by_thread: bool) -> dict[str, Any]:
    synced = await user.sync(filter=THREADS) if by_thread else await user.sync()
    entry = synced["rooms"]["join"][room_id]
    return {
        "main": entry["unread_notifications"]["notification_count"],
        "threads": {
            root: c["notification_count"]
            for root, c in entry.get("unread_thread_notifications", {}).items()
        },
    }


async def test_counts_by_thread_and_threaded_receipts(
    node: Node, vclient: ValidatingClient
) -> None:
    alice = await vclient.register("alice")
    bob = await vclient.register("bob")
    room_id = await alice.create_room(preset="public_chat")
    await bob.join(room_id)

    root = await send(bob, room_id, text("避難所の開設について"))
    reply = await send(bob, room_id, in_thread(root, "第一小学校は開設済み"))
    # A reaction to the reply is in the thread (and notifies no one by the default rules).
    await send(
        bob,
        room_id,
        {"m.relates_to": {"rel_type": "m.annotation", "event_id": reply, "key": "👍"}},
        "m.reaction",
    )
    later = await send(bob, room_id, text("本部会議は15時から"))

    assert await counts(alice, room_id, by_thread=True) == {"main": 2, "threads": {root: 1}}
    # A client that does not ask for threads gets one count for all.
    assert await counts(alice, room_id, by_thread=False) == {"main": 3, "threads": {}}

    # Reading the thread reads only the thread.
    await receipt(alice, room_id, reply, root)
    assert await counts(alice, room_id, by_thread=True) == {"main": 2, "threads": {}}
    # Reading the main timeline ("main") reads only the main timeline.
    await receipt(alice, room_id, later, "main")
    assert await counts(alice, room_id, by_thread=True) == {"main": 0, "threads": {}}

    again = await send(bob, room_id, in_thread(root, "第二小学校も開設"))
    await send(bob, room_id, text("了解"))
    assert await counts(alice, room_id, by_thread=True) == {"main": 1, "threads": {root: 1}}
    # An unthreaded receipt reads everything up to its event, threads included.
    await receipt(alice, room_id, again, None)
    assert await counts(alice, room_id, by_thread=True) == {"main": 1, "threads": {}}
