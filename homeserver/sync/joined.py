"""The section of a joined room in a /sync response: its timeline, the state the client
needs with it, its account data, typing and receipts (``ephemeral``) and its summary.
Its unread counts are read for all the rooms of a response at once
(:mod:`homeserver.sync.counts`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from homeserver.rooms.cache import RoomCache, StateKey
from homeserver.rooms.history import HistoryService, stream_token
from homeserver.rooms.reader import RoomReader
from homeserver.rooms.visibility import Reader, Visibility
from homeserver.storage import events as event_store
from homeserver.storage import rooms as room_store
from homeserver.storage import userdata as userdata_store
from homeserver.storage.events import StoredEvent
from homeserver.sync.params import SyncFilter, SyncRequest, SyncToken
from homeserver.sync.typing import TypingService


class JoinedRoomSync:
    """Reads joined rooms' sections of /sync responses."""

    def __init__(self, rooms: RoomReader, history: HistoryService, typing: TypingService) -> None:
        self.rooms = rooms
        self.history = history
        self.typing = typing
        self.db = rooms.db

    async def section(
        self,
        req: SyncRequest,
        room: RoomCache,
        since: SyncToken | None,
        room_account_data: list[dict[str, Any]] | None,
        receipts: list[userdata_store.Receipt],
    ) -> dict[str, Any] | None:
        """The room's section of the response from ``since`` (None: a room new to this
        sync), but its unread counts (read for all rooms at once); None when nothing
        changed in it since ``since``."""
        user_id = req.user_id
        limit = req.sync_filter.timeline_limit
        recent, changed_state, room_account_data = await self._read(
            req, room, since, room_account_data
        )
        limited = len(recent) > limit
        timeline = list(reversed(recent[:limit]))
        timeline = await self.history.visibility.events(user_id, room, timeline)
        typing_changed = since is None or self.typing.changed_since(room.room_id, since.typing)
        if since is not None and not timeline and not changed_state and not receipts \
                and not typing_changed and not room_account_data:  # fmt: skip
            return None
        reader = Reader(user_id, room, "join", None)
        state_events = await timeline_state(
            self.history.visibility, reader, timeline, since, changed_state, req.sync_filter
        )
        requester_key = (req.requester.user_id, req.requester.device_id)
        prev_batch = (
            stream_token(timeline[0].stream_ordering - 1)
            if timeline
            else stream_token(req.upto.position)
        )
        entry: dict[str, Any] = {
            "timeline": {
                "events": await self.history.serialize(
                    timeline, requester_key, include_room_id=False
                ),
                "limited": limited,
                "prev_batch": prev_batch,
            },
            "state": {
                "events": await self.history.serialize(state_events, None, include_room_id=False)
            },
            "account_data": {"events": room_account_data},
            "ephemeral": {"events": self._ephemeral(room, user_id, receipts, typing_changed)},
            "summary": summary(room, user_id),
        }
        return entry

    async def _read(
        self,
        req: SyncRequest,
        room: RoomCache,
        since: SyncToken | None,
        room_account_data: list[dict[str, Any]] | None,
    ) -> tuple[list[StoredEvent], set[tuple[str, str]] | None, list[dict[str, Any]]]:
        """What may be new in the room since ``since``: its latest events (one more than
        the timeline limit, newest first), the keys of its changed state (None without
        ``since``), and its account data (read when not given).  Only what the change
        trackers say may have changed is asked for."""
        user_id = req.user_id
        upto = req.upto.position
        sync_filter = req.sync_filter
        after = since.position if since else None
        changes = self.db.changes
        recent: list[StoredEvent] = []
        changed_state: set[tuple[str, str]] | None = None
        async with self.db.read() as conn:
            if after is None or changes.room_events.changed_since(room.room_id, after):
                recent = await event_store.room_events(
                    conn,
                    room.room_id,
                    after=after,
                    upto=upto,
                    limit=sync_filter.timeline_limit + 1,
                    backwards=True,
                    types=sync_filter.timeline_types,
                    not_types=sync_filter.timeline_not_types,
                )
            if after is not None:
                changed_state = (
                    await room_store.state_changes_after(conn, room.room_id, after, upto)
                    if changes.room_state.changed_since(room.room_id, after)
                    else set()
                )
            if room_account_data is None:
                rows = await userdata_store.account_data_since(conn, user_id, None, upto)
                room_account_data = [
                    {"type": t, "content": c} for r, t, c in rows if r == room.room_id
                ]
        return recent, changed_state, room_account_data

    def _ephemeral(
        self,
        room: RoomCache,
        user_id: str,
        receipts: list[userdata_store.Receipt],
        typing_changed: bool,
    ) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        if typing_changed:
            events.append(
                {
                    "type": "m.typing",
                    "content": {"user_ids": self.typing.typing_users(room.room_id)},
                }
            )
        receipt_event = receipts_event(receipts, user_id)
        if receipt_event is not None:
            events.append(receipt_event)
        return events


def receipts_event(receipts: list[userdata_store.Receipt], user_id: str) -> dict[str, Any] | None:
    """The ``m.receipt`` event of a room's receipts as ``user_id`` may see them (others'
    private receipts left out); None when there are none."""
    content: dict[str, dict[str, dict[str, Any]]] = {}
    for receipt in receipts:
        if receipt.receipt_type == "m.read.private" and receipt.user_id != user_id:
            continue
        data: dict[str, Any] = {"ts": receipt.ts}
        if receipt.thread_id:
            data["thread_id"] = receipt.thread_id
        content.setdefault(receipt.event_id, {}).setdefault(receipt.receipt_type, {})[
            receipt.user_id
        ] = data
    return {"type": "m.receipt", "content": content} if content else None


async def timeline_state(
    visibility: Visibility,
    reader: Reader,
    timeline: list[StoredEvent],
    since: SyncToken | None,
    changed: set[tuple[str, str]] | None,
    sync_filter: SyncFilter,
) -> list[StoredEvent]:
    """The state a room's section of a /sync response carries with its timeline: all of it
    at the start of the timeline (without ``since``), else the ``changed`` entries, less
    what the timeline has, and only the members it needs when lazy-loading."""
    in_timeline = {e.event_id for e in timeline}
    state: Mapping[StateKey, str]
    if since is None:
        if timeline:
            state = await visibility.state_before(reader, timeline[0])
        else:
            state = await visibility.state_now(reader)
        keys = list(state)
    else:
        keys = list(changed or ())
        state = await visibility.state_now(reader)
    if sync_filter.lazy_load_members:
        wanted = {e.sender for e in timeline} | {reader.user_id}
        keys = [k for k in keys if k[0] != "m.room.member" or k[1] in wanted]
    ids = {k: state[k] for k in keys if k in state and state[k] not in in_timeline}
    return await visibility.state_events(ids)


def summary(room: RoomCache, user_id: str) -> dict[str, Any]:
    joined = [u for u, m in room.members.items() if m == "join"]
    invited = [u for u, m in room.members.items() if m == "invite"]
    heroes = sorted(u for u in joined + invited if u != user_id)[:5]
    return {
        "m.heroes": heroes,
        "m.joined_member_count": len(joined),
        "m.invited_member_count": len(invited),
    }
