"""Bundled aggregations (``unsigned.m.relations``) where the spec serves events: /sync,
/messages, /context, /event, /relations.  Edits as spec v1.7 says: the original keeps its
content and the latest valid edit is bundled whole; edits by another sender, of a state
event, without ``m.new_content`` and redacted ones do not count; a redacted original has
none."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from tests.homeserver.client import Client, User
from tests.homeserver.rooms.relation_helpers import (
    V3,
    edit,
    ids,
    react,
    redact,
    reference,
    relates,
    relations_path,
    reply_in_thread,
    send,
)


async def _event(user: User, room_id: str, event_id: str) -> dict[str, Any]:
    return dict(await user.ok("GET", f"{V3}/rooms/{room_id}/event/{event_id}"))


def _relations(event: dict[str, Any]) -> dict[str, Any]:
    return dict(event["unsigned"].get("m.relations", {}))


async def _later(user: User, room_id: str, original: str, body: str) -> str:
    """An edit sent in a later millisecond than the previous one (the spec orders edits by
    ``origin_server_ts``)."""
    await asyncio.sleep(0.005)
    return await edit(user, room_id, original, body)


async def test_latest_valid_edit_is_bundled_and_content_kept(client: Client) -> None:
    alice = await client.register("alice")
    bob = await client.register("bob")
    room_id = await alice.create_room(preset="public_chat")
    await bob.join(room_id)
    original = await alice.send(room_id, "会議は10時")
    first = await _later(alice, room_id, original, "会議は11時")
    second = await _later(alice, room_id, original, "会議は13時")
    # Not edits of Alice's message: Bob's, and one without new content.
    await _later(bob, room_id, original, "会議は中止")
    await asyncio.sleep(0.005)
    await send(alice, room_id, {"msgtype": "m.text", "body": "*", **relates("m.replace", original)})
    event = await _event(alice, room_id, original)
    assert event["content"]["body"] == "会議は10時"
    replace = _relations(event)["m.replace"]
    assert replace["event_id"] == second and replace["sender"] == alice.user_id
    assert replace["content"]["m.new_content"]["body"] == "会議は13時"
    assert isinstance(replace["origin_server_ts"], int) and replace["type"] == "m.room.message"
    # Bob sees the same bundle.
    assert _relations(await _event(bob, room_id, original))["m.replace"]["event_id"] == second
    # An edit has no aggregations of its own.
    assert "m.relations" not in (await _event(alice, room_id, second))["unsigned"]
    # Redacting the latest edit brings the one before back.
    await redact(alice, room_id, second)
    assert _relations(await _event(alice, room_id, original))["m.replace"]["event_id"] == first
    # Redacting the original: no edit is bundled, and /relations gives none away.
    await redact(alice, room_id, original)
    event = await _event(alice, room_id, original)
    assert event["content"] == {} and "m.replace" not in _relations(event)
    children = await alice.ok("GET", relations_path(room_id, original))
    assert first not in ids(children["chunk"]) and "会議は11時" not in json.dumps(
        children, ensure_ascii=False
    )


async def test_edits_of_state_events_are_ignored(client: Client) -> None:
    alice = await client.register("alice")
    room_id = await alice.create_room(preset="private_chat")
    path = f"{V3}/rooms/{room_id}/state/org.example.notice"
    notice = (await alice.ok("PUT", path, {"text": "旧"}))["event_id"]
    # An event of the same type and sender, with new content, that relates to it.
    content = {"text": "*", "m.new_content": {"text": "新"}, **relates("m.replace", notice)}
    await send(alice, room_id, content, "org.example.notice")
    await reference(alice, room_id, notice, "ref")
    event = await _event(alice, room_id, notice)
    assert "m.relations" not in event["unsigned"]
    assert (await alice.ok("GET", path)) == {"text": "旧"}
    messages = await alice.ok("GET", f"{V3}/rooms/{room_id}/messages", params={"limit": "5"})
    state_event = next(e for e in messages["chunk"] if e["event_id"] == notice)
    assert "m.relations" not in state_event["unsigned"]


async def test_bundles_in_sync_messages_context_and_event(client: Client) -> None:
    alice = await client.register("alice")
    bob = await client.register("bob")
    room_id = await alice.create_room(preset="public_chat")
    await bob.join(room_id)
    root = await alice.send(room_id, "スレッドの始まり")
    await reply_in_thread(bob, room_id, root, "返信1")
    latest = await reply_in_thread(bob, room_id, root, "返信2")
    latest_edit = await _later(bob, room_id, latest, "返信2 (訂正)")
    referrer = await reference(bob, room_id, root, "参照")
    await react(bob, room_id, root, "👍")

    def check(event: dict[str, Any], participated: bool) -> None:
        relations = _relations(event)
        thread = relations["m.thread"]
        assert thread["count"] == 2 and thread["current_user_participated"] is participated
        assert thread["latest_event"]["event_id"] == latest
        assert thread["latest_event"]["content"]["body"] == "返信2"
        nested = thread["latest_event"]["unsigned"]["m.relations"]["m.replace"]
        assert nested["event_id"] == latest_edit
        assert relations["m.reference"] == {"chunk": [{"event_id": referrer}]}
        assert "m.annotation" not in relations

    sync = await alice.sync()
    timeline = sync["rooms"]["join"][room_id]["timeline"]["events"]
    check(next(e for e in timeline if e["event_id"] == root), True)
    assert "room_id" not in next(e for e in timeline if e["event_id"] == root)["unsigned"][
        "m.relations"
    ]["m.thread"]["latest_event"]  # fmt: skip
    messages = await alice.ok("GET", f"{V3}/rooms/{room_id}/messages", params={"limit": "50"})
    check(next(e for e in messages["chunk"] if e["event_id"] == root), True)
    context = await bob.ok("GET", f"{V3}/rooms/{room_id}/context/{root}")
    check(context["event"], True)
    check(await _event(bob, room_id, root), True)
    carol = await client.register("carol")
    await carol.join(room_id)
    check(await _event(carol, room_id, root), False)
    # In /relations each child carries its own (the edit of the latest reply).
    children = await alice.ok("GET", relations_path(room_id, root, "m.thread"))
    assert _relations(children["chunk"][0])["m.replace"]["event_id"] == latest_edit


async def test_incremental_sync_bundles_only_a_limited_timeline(client: Client) -> None:
    """As Synapse: an unlimited timeline gives the client every child already."""
    alice = await client.register("alice")
    room_id = await alice.create_room(preset="private_chat")
    token = (await alice.sync())["next_batch"]
    root = await alice.send(room_id, "root")
    await reference(alice, room_id, root, "ref")
    sync = await alice.sync(since=token)
    section = sync["rooms"]["join"][room_id]["timeline"]
    assert not section["limited"] and root in ids(section["events"])
    assert all("m.relations" not in e["unsigned"] for e in section["events"])
    token = sync["next_batch"]
    await alice.send(room_id, "filler")
    second = await alice.send(room_id, "second root")
    referrer = await reference(alice, room_id, second, "ref 2")
    limited_filter = json.dumps({"room": {"timeline": {"limit": 2}}})
    sync = await alice.sync(since=token, filter=limited_filter)
    section = sync["rooms"]["join"][room_id]["timeline"]
    assert section["limited"] is True and ids(section["events"]) == [second, referrer]
    assert _relations(section["events"][0])["m.reference"] == {"chunk": [{"event_id": referrer}]}
