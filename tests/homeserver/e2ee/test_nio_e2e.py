"""End to end with a real client library: matrix-nio's AsyncClient drives the node.

nio parses every response with its own schemas (a response that does not fit becomes an
error object), keeps its own room state from /sync, and speaks the API the way a deployed
bot or client does; so this is what a real client sees of the node.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from typing import Any

import pytest
from nio import (
    AsyncClient,
    AsyncClientConfig,
    DownloadResponse,
    JoinResponse,
    LoginResponse,
    MessageDirection,
    ReceiptEvent,
    RedactedEvent,
    RegisterResponse,
    RoomCreateResponse,
    RoomMessageImage,
    RoomMessagesResponse,
    RoomMessageText,
    RoomReadMarkersResponse,
    RoomRedactResponse,
    RoomSendResponse,
    RoomTypingResponse,
    SyncResponse,
    TypingNoticeEvent,
    UpdateReceiptMarkerResponse,
    UploadResponse,
)
from nio.events.room_events import RedactionEvent
from PIL import Image

from tests.homeserver.conftest import Node

PASSWORD = "correct horse battery"


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def new_client(node: Node) -> AsyncClient:
    config = AsyncClientConfig(encryption_enabled=False, store_sync_tokens=False)
    return AsyncClient(node.base_url, config=config)


@pytest.fixture
async def clients(node: Node) -> AsyncIterator[tuple[AsyncClient, AsyncClient]]:
    alice, bob = new_client(node), new_client(node)
    try:
        yield alice, bob
    finally:
        await alice.close()
        await bob.close()


async def sync(client: AsyncClient, **kwargs: Any) -> SyncResponse:
    response = await client.sync(timeout=0, **kwargs)
    assert isinstance(response, SyncResponse), response
    return response


async def test_two_users_with_matrix_nio(
    node: Node, clients: tuple[AsyncClient, AsyncClient]
) -> None:
    alice, bob = clients
    # Register (nio does the m.login.dummy stage), then log in again.
    registered = await alice.register("alice", PASSWORD, device_name="alice-laptop")
    assert isinstance(registered, RegisterResponse), registered
    assert registered.user_id == f"@alice:{node.server_name}"
    assert isinstance(await bob.register("bob", PASSWORD), RegisterResponse)
    first_device = alice.device_id
    alice.user = "alice"
    logged_in = await alice.login(PASSWORD, device_name="alice-phone")
    assert isinstance(logged_in, LoginResponse), logged_in
    # nio sends its device ID along: the login is a new token for the same device.
    assert logged_in.user_id == registered.user_id and logged_in.device_id == first_device
    assert logged_in.access_token != registered.access_token

    created = await alice.room_create(name="防災訓練", topic="連絡", invite=[bob.user_id])
    assert isinstance(created, RoomCreateResponse), created
    room_id = created.room_id

    # Bob sees the invite in his sync, with the room's name, and joins.
    bob_first = await sync(bob)
    assert room_id in bob_first.rooms.invite
    assert bob.invited_rooms[room_id].name == "防災訓練"
    joined = await bob.join(room_id)
    assert isinstance(joined, JoinResponse) and joined.room_id == room_id

    alice_first = await sync(alice)
    assert room_id in alice.rooms
    assert bob.user_id in alice.rooms[room_id].users or bob.user_id in (
        alice.rooms[room_id].invited_users
    )

    # Text in both directions.
    hello = await alice.room_send(
        room_id, "m.room.message", {"msgtype": "m.text", "body": "おはようございます"}
    )
    assert isinstance(hello, RoomSendResponse), hello
    reply = await bob.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": "了解"})
    assert isinstance(reply, RoomSendResponse), reply

    # An image: nio uploads it, Alice sends it, Bob downloads the same bytes.
    data = png_bytes()
    uploaded, keys = await alice.upload(
        io.BytesIO(data), content_type="image/png", filename="map.png", filesize=len(data)
    )
    assert isinstance(uploaded, UploadResponse), uploaded
    assert keys is None and uploaded.content_uri.startswith("mxc://")
    image = await alice.room_send(
        room_id,
        "m.room.message",
        {
            "msgtype": "m.image",
            "body": "map.png",
            "url": uploaded.content_uri,
            "info": {"mimetype": "image/png", "size": len(data), "w": 64, "h": 48},
        },
    )
    assert isinstance(image, RoomSendResponse), image
    downloaded = await bob.download(mxc=uploaded.content_uri)
    assert isinstance(downloaded, DownloadResponse), downloaded
    assert downloaded.body == data and downloaded.content_type == "image/png"

    # Both see everything in /sync, in order, as nio's event classes.
    bob_view = await sync(bob, since=bob_first.next_batch)
    bob_timeline = bob_view.rooms.join[room_id].timeline.events
    alice_view = await sync(alice, since=alice_first.next_batch)
    alice_timeline = alice_view.rooms.join[room_id].timeline.events
    for timeline in (bob_timeline, alice_timeline):
        texts = [e.body for e in timeline if isinstance(e, RoomMessageText)]
        assert texts[-2:] == ["おはようございます", "了解"]
        images = [e for e in timeline if isinstance(e, RoomMessageImage)]
        assert [(e.url, e.body) for e in images] == [(uploaded.content_uri, "map.png")]
    assert [e.event_id for e in alice_timeline][-3:] == [
        hello.event_id,
        reply.event_id,
        image.event_id,
    ]
    assert alice.rooms[room_id].member_count == 2

    # Receipts and typing reach the other side as ephemeral events.
    receipt = await bob.update_receipt_marker(room_id, image.event_id)
    assert isinstance(receipt, UpdateReceiptMarkerResponse), receipt
    markers = await alice.room_read_markers(room_id, image.event_id, image.event_id)
    assert isinstance(markers, RoomReadMarkersResponse), markers
    typing = await bob.room_typing(room_id, True, timeout=30_000)
    assert isinstance(typing, RoomTypingResponse), typing
    alice_eph = await sync(alice, since=alice_view.next_batch)
    ephemeral = alice_eph.rooms.join[room_id].ephemeral
    typing_events = [e for e in ephemeral if isinstance(e, TypingNoticeEvent)]
    assert typing_events and typing_events[-1].users == [bob.user_id]
    receipts = [
        (r.event_id, r.receipt_type, r.user_id)
        for e in ephemeral
        if isinstance(e, ReceiptEvent)
        for r in e.receipts
    ]
    assert (image.event_id, "m.read", bob.user_id) in receipts
    assert alice.rooms[room_id].typing_users == [bob.user_id]
    stopped = await bob.room_typing(room_id, False)
    assert isinstance(stopped, RoomTypingResponse)
    after_stop = await sync(alice, since=alice_eph.next_batch)
    assert alice.rooms[room_id].typing_users == []
    assert room_id in after_stop.rooms.join

    # History: page backwards from the latest sync until the room's beginning.
    for i in range(12):
        sent = await alice.room_send(
            room_id, "m.room.message", {"msgtype": "m.text", "body": f"記録 {i}"}
        )
        assert isinstance(sent, RoomSendResponse)
    latest = await sync(bob, since=bob_view.next_batch)
    token: str | None = latest.rooms.join[room_id].timeline.prev_batch
    paged: list[str] = []
    pages = 0
    while token is not None and pages < 50:
        page = await bob.room_messages(room_id, start=token, limit=5)
        assert isinstance(page, RoomMessagesResponse), page
        paged.extend(e.body for e in page.chunk if isinstance(e, RoomMessageText))
        pages += 1
        token = page.end if page.chunk else None
    assert pages > 3
    recent_bodies = [
        e.body for e in latest.rooms.join[room_id].timeline.events if isinstance(e, RoomMessageText)
    ]
    everything = list(reversed(paged)) + recent_bodies
    assert everything[:2] == ["おはようございます", "了解"]
    assert everything[-12:] == [f"記録 {i}" for i in range(12)]
    forward = await bob.room_messages(
        room_id, start="t0", direction=MessageDirection.front, limit=100
    )
    assert isinstance(forward, RoomMessagesResponse), forward
    assert [e.body for e in forward.chunk if isinstance(e, RoomMessageText)][:2] == [
        "おはようございます",
        "了解",
    ]

    # A redaction: Bob sees the redaction event and the message as redacted.
    redacted = await alice.room_redact(room_id, hello.event_id, reason="誤送信")
    assert isinstance(redacted, RoomRedactResponse), redacted
    bob_after = await sync(bob, since=latest.next_batch)
    redactions = [
        e for e in bob_after.rooms.join[room_id].timeline.events if isinstance(e, RedactionEvent)
    ]
    assert [(e.redacts, e.reason) for e in redactions] == [(hello.event_id, "誤送信")]
    history = await bob.room_messages(
        room_id, start="t0", direction=MessageDirection.front, limit=100
    )
    assert isinstance(history, RoomMessagesResponse), history
    original = next(e for e in history.chunk if e.event_id == hello.event_id)
    assert isinstance(original, RedactedEvent) and original.reason == "誤送信"
