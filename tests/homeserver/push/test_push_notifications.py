"""Notification counts over real HTTP: /sync's unread_notifications come from the push rules
evaluated when each event is persisted, arrive in the same response as the event, are reset
by read receipts, and follow the user's rule changes.  Every response is validated against
the spec's OpenAPI."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any
from urllib.parse import quote

from tests.homeserver.client import User
from tests.homeserver.conftest import Node
from tests.homeserver.keyhelpers import (
    V3,
)
from tests.homeserver.openapi import ValidatingClient

P = f"{V3}/pushrules/global"
_txn = itertools.count()


async def send(
    user: User, room_id: str, content: dict[str, Any], event_type: str = "m.room.message"
) -> str:
    path = f"{V3}/rooms/{quote(room_id, safe='')}/send/{event_type}/p{next(_txn)}"
    return str((await user.ok("PUT", path, content))["event_id"])


def text(body: str, **extra: Any) -> dict[str, Any]:
    return {"msgtype": "m.text", "body": body, **extra}


async def read(user: User, room_id: str, event_id: str, receipt: str = "m.read") -> None:
    path = f"{V3}/rooms/{quote(room_id, safe='')}/receipt/{receipt}/{quote(event_id, safe='')}"
    await user.ok("POST", path, {})


async def counts(
    user: User, room_id: str, since: str | None
) -> tuple[dict[str, int], str, list[str]]:
    """The room's unread counts, the next batch and the timeline's event IDs."""
    synced = await user.sync(since=since)
    entry = synced["rooms"]["join"][room_id]
    ids = [e["event_id"] for e in entry["timeline"]["events"]]
    return entry["unread_notifications"], synced["next_batch"], ids


async def three_in_a_room(vclient: ValidatingClient) -> tuple[User, User, User, str]:
    alice = await vclient.register("alice")
    bob = await vclient.register("bob")
    carol = await vclient.register("carol")
    room_id = await alice.create_room(preset="public_chat", name="防災会議")
    await bob.join(room_id)
    await carol.join(room_id)
    return alice, bob, carol, room_id


async def test_mentions_highlight_and_a_read_receipt_resets(
    node: Node, vclient: ValidatingClient
) -> None:
    alice, bob, carol, room_id = await three_in_a_room(vclient)
    since = (await alice.sync())["next_batch"]
    bob_since = (await bob.sync())["next_batch"]

    plain = await send(bob, room_id, text("おはようございます"))
    mention = await send(
        bob, room_id, text("Alice, 資料を", **{"m.mentions": {"user_ids": [alice.user_id]}})
    )
    # The counts an event changes come in the same /sync response as the event.
    unread, since, ids = await counts(alice, room_id, since)
    assert ids == [plain, mention]
    assert unread == {"notification_count": 2, "highlight_count": 1}
    # Carol was not mentioned; bob's own events never count for him.
    carol_unread, _, _ = await counts(carol, room_id, None)
    assert carol_unread == {"notification_count": 2, "highlight_count": 0}
    bob_unread, bob_since, _ = await counts(bob, room_id, bob_since)
    assert bob_unread == {"notification_count": 0, "highlight_count": 0}

    # Reading the first message leaves the mention unread; reading the last clears all.
    await read(alice, room_id, plain)
    unread, since, _ = await counts(alice, room_id, since)
    assert unread == {"notification_count": 1, "highlight_count": 1}
    await read(alice, room_id, mention, "m.read.private")
    unread, since, _ = await counts(alice, room_id, since)
    assert unread == {"notification_count": 0, "highlight_count": 0}
    # The receipt deleted the read notifications (the table stays small).
    async with node.services.db.read() as conn:
        from homeserver.storage import push as push_store

        assert await push_store.unread_counts(conn, room_id, alice.user_id, 0) == (0, 0)
        assert await push_store.unread_counts(conn, room_id, carol.user_id, 0) == (2, 0)

    # A room mention by someone with the power (alice created the room: 100) highlights;
    # by someone without it (bob: 0 < notifications.room 50) it is an ordinary message.
    await send(alice, room_id, text("全員へ", **{"m.mentions": {"room": True}}))
    bob_unread, bob_since, _ = await counts(bob, room_id, bob_since)
    assert bob_unread == {"notification_count": 1, "highlight_count": 1}
    await send(bob, room_id, text("全員へ?", **{"m.mentions": {"room": True}}))
    unread, since, _ = await counts(alice, room_id, since)
    assert unread == {"notification_count": 1, "highlight_count": 0}

    # Notices, reactions and edits do not notify; a redacted message stops counting.
    await send(bob, room_id, {"msgtype": "m.notice", "body": "bot"})
    await send(
        bob,
        room_id,
        {"m.relates_to": {"rel_type": "m.annotation", "event_id": mention, "key": "👍"}},
        "m.reaction",
    )
    doomed = await send(bob, room_id, text("間違い"))
    unread, since, _ = await counts(alice, room_id, since)
    assert unread["notification_count"] == 2
    await bob.ok(
        "PUT",
        f"{V3}/rooms/{quote(room_id, safe='')}/redact/{quote(doomed, safe='')}/r{next(_txn)}",
        {},
    )
    unread, since, _ = await counts(alice, room_id, since)
    assert unread == {"notification_count": 1, "highlight_count": 0}
    vclient.check(
        "GET /_matrix/client/v3/sync",
        "POST /_matrix/client/v3/rooms/{roomId}/receipt/{receiptType}/{eventId}",
    )


async def test_rule_changes_change_the_counts(node: Node, vclient: ValidatingClient) -> None:
    alice, bob, _, room_id = await three_in_a_room(vclient)
    since = (await alice.sync())["next_batch"]

    async def unread_after(content: dict[str, Any]) -> dict[str, int]:
        nonlocal since
        event_id = await send(bob, room_id, content)
        found, since, _ = await counts(alice, room_id, since)
        await read(alice, room_id, event_id)
        return found

    assert await unread_after(text("one")) == {"notification_count": 1, "highlight_count": 0}

    # Disabling .m.rule.message: messages no longer notify, mentions still do.
    await alice.ok("PUT", f"{P}/underride/.m.rule.message/enabled", {"enabled": False})
    assert await unread_after(text("two")) == {"notification_count": 0, "highlight_count": 0}
    mention = text("three", **{"m.mentions": {"user_ids": [alice.user_id]}})
    assert await unread_after(mention) == {"notification_count": 1, "highlight_count": 1}
    await alice.ok("PUT", f"{P}/underride/.m.rule.message/enabled", {"enabled": True})
    assert await unread_after(text("four")) == {"notification_count": 1, "highlight_count": 0}

    # A room rule with dont_notify mutes the room; override rules (mentions) still win.
    room_rule = f"{P}/room/{quote(room_id, safe='')}"
    await alice.ok("PUT", room_rule, {"actions": ["dont_notify"]})
    assert await unread_after(text("five")) == {"notification_count": 0, "highlight_count": 0}
    assert await unread_after(mention) == {"notification_count": 1, "highlight_count": 1}
    await alice.ok("DELETE", room_rule)

    # A content rule highlights a keyword (Japanese words match inside a sentence).
    await alice.ok(
        "PUT",
        f"{P}/content/kaigi",
        {"pattern": "避難", "actions": ["notify", {"set_tweak": "highlight"}]},
    )
    assert await unread_after(text("本日避難訓練があります")) == {
        "notification_count": 1,
        "highlight_count": 1,
    }

    # A sender rule silences bob; the master rule silences everything.
    await alice.ok("PUT", f"{P}/sender/{quote(bob.user_id, safe='')}", {"actions": []})
    assert await unread_after(text("six")) == {"notification_count": 0, "highlight_count": 0}
    await alice.ok("DELETE", f"{P}/sender/{quote(bob.user_id, safe='')}")
    await alice.ok("PUT", f"{P}/override/.m.rule.master/enabled", {"enabled": True})
    assert await unread_after(mention) == {"notification_count": 0, "highlight_count": 0}
    vclient.check("PUT /_matrix/client/v3/pushrules/global/{kind}/{ruleId}/enabled")


async def test_one_to_one_invites_and_counts_per_room(
    node: Node, vclient: ValidatingClient
) -> None:
    alice = await vclient.register("alice")
    bob = await vclient.register("bob")
    since = (await bob.sync())["next_batch"]
    room_id = await alice.create_room(preset="private_chat")
    await alice.invite(room_id, bob.user_id)
    # The invite notifies bob (.m.rule.invite_for_me): it is pushed, though invites have no
    # unread counts in /sync.
    async with node.services.db.read() as conn:
        from homeserver.storage import push as push_store

        assert await push_store.unread_counts(conn, room_id, bob.user_id, 0) == (1, 0)
    await bob.join(room_id)
    synced = await bob.sync(since=since)
    since = synced["next_batch"]
    first = await send(alice, room_id, text("1:1"))
    unread, since, ids = await counts(bob, room_id, since)
    assert ids == [first] and unread == {"notification_count": 1, "highlight_count": 0}
    # Leaving a room drops the user's notifications in it.
    await bob.ok("POST", f"{V3}/rooms/{quote(room_id, safe='')}/leave", {})
    async with node.services.db.read() as conn:
        assert await push_store.unread_counts(conn, room_id, bob.user_id, 0) == (0, 0)


async def test_a_long_poll_woken_by_an_event_has_its_counts(
    node: Node, vclient: ValidatingClient
) -> None:
    alice, bob, _, room_id = await three_in_a_room(vclient)
    since = (await alice.sync())["next_batch"]
    for round_ in range(5):
        waiting = asyncio.create_task(alice.sync(since=since, timeout=10_000))
        await asyncio.sleep(0.05)
        mention = await send(
            bob, room_id, text(f"#{round_}", **{"m.mentions": {"user_ids": [alice.user_id]}})
        )
        synced = await waiting
        since = synced["next_batch"]
        entry = synced["rooms"]["join"][room_id]
        assert mention in [e["event_id"] for e in entry["timeline"]["events"]]
        assert entry["unread_notifications"] == {
            "notification_count": round_ + 1,
            "highlight_count": round_ + 1,
        }
