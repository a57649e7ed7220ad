"""/sync: initial and incremental, long-polling, with filters and lazy-loaded members.

A sync token is ``s<stream position>_<typing serial>``.  Everything persisted (events,
state deltas, memberships, receipts, account data, to-device messages, device list
changes) has a position in the node's single stream, so "what changed since" is a range
query per kind of data.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from homeserver.accounts.service import Requester
from homeserver.common.clock import Clock
from homeserver.common.errors import MatrixError
from homeserver.common.notifier import Notifier, wait_for
from homeserver.rooms.cache import RoomCache
from homeserver.rooms.eventformat import STRIPPED_STATE_TYPES, stripped_event
from homeserver.rooms.history import HistoryService, stream_token
from homeserver.rooms.service import RoomService
from homeserver.storage import events as event_store
from homeserver.storage import rooms as room_store
from homeserver.storage import userdata as userdata_store
from homeserver.storage.events import StoredEvent
from homeserver.storage.rooms import Membership
from homeserver.sync import counts
from homeserver.sync.typing import TypingService
from homeserver.userdata.ignored import NOBODY, invited_by

DEFAULT_TIMELINE_LIMIT = 10
MAX_TIMEOUT_MS = 300_000


@dataclass(frozen=True)
class SyncToken:
    position: int
    typing: int

    def __str__(self) -> str:
        return f"s{self.position}_{self.typing}"

    @classmethod
    def parse(cls, text: str) -> SyncToken:
        parts = text[1:].split("_") if text.startswith("s") else []
        # ASCII digits within int64: anything else would fail in int() or in the database.
        if len(parts) != 2 or not all(p.isascii() and p.isdigit() and len(p) <= 18 for p in parts):
            raise MatrixError(400, "M_INVALID_PARAM", f"Invalid since token {text!r}")
        return cls(int(parts[0]), int(parts[1]))


@dataclass(frozen=True)
class SyncFilter:
    timeline_limit: int = DEFAULT_TIMELINE_LIMIT
    timeline_types: list[str] | None = None
    timeline_not_types: list[str] | None = None
    lazy_load_members: bool = False
    include_leave: bool = False
    rooms: list[str] | None = None
    not_rooms: list[str] | None = None
    account_data: bool = True
    ephemeral: bool = True
    #: Notification counts per thread (``unread_thread_notifications``).
    thread_counts: bool = False

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> SyncFilter:
        room = body.get("room") or {}
        timeline = room.get("timeline") or {}
        state = room.get("state") or {}
        limit = timeline.get("limit", DEFAULT_TIMELINE_LIMIT)
        return cls(
            timeline_limit=max(1, min(int(limit), 1000))
            if isinstance(limit, int)
            else DEFAULT_TIMELINE_LIMIT,
            timeline_types=timeline.get("types"),
            timeline_not_types=timeline.get("not_types"),
            lazy_load_members=bool(state.get("lazy_load_members")),
            include_leave=bool(room.get("include_leave")),
            rooms=room.get("rooms"),
            not_rooms=room.get("not_rooms"),
            account_data=(body.get("account_data") or {}).get("not_types") != ["*"],
            ephemeral=(room.get("ephemeral") or {}).get("not_types") != ["*"],
            thread_counts=timeline.get("unread_thread_notifications") is True,
        )


class SyncService:
    def __init__(
        self,
        rooms: RoomService,
        history: HistoryService,
        typing: TypingService,
        notifier: Notifier,
        clock: Clock,
    ) -> None:
        self.rooms = rooms
        self.history = history
        self.typing = typing
        self.notifier = notifier
        self.clock = clock
        self.db = rooms.db
        #: Extra sections contributed by other services (to-device, device lists, keys):
        #: async callables (requester, since position or None, upto position, response,
        #: the IDs of the rooms the user is joined to).
        self.extensions: list[Any] = []
        #: user_id -> (stream position read at, the user's memberships); valid while the
        #: membership change tracker has nothing newer for the user.
        self._memberships: dict[str, tuple[int, list[Membership]]] = {}

    def current_token(self) -> SyncToken:
        return SyncToken(self.db.stream.current, self.typing.serial)

    async def sync(
        self,
        requester: Requester,
        since: str | None,
        timeout_ms: int,
        sync_filter: SyncFilter,
        full_state: bool = False,
    ) -> dict[str, Any]:
        since_token = SyncToken.parse(since) if since else None
        deadline = time.monotonic() + min(max(timeout_ms, 0), MAX_TIMEOUT_MS) / 1000
        while True:
            with self.notifier.waiter(requester.user_id) as woken:
                upto = self.current_token()
                response = await self._sync_once(
                    requester, since_token, upto, sync_filter, full_state
                )
                if since_token is None or full_state or _has_news(response):
                    return response
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return response
                if self.current_token() == upto:
                    await wait_for(woken, remaining)

    async def _sync_once(
        self,
        requester: Requester,
        since: SyncToken | None,
        upto: SyncToken,
        sync_filter: SyncFilter,
        full_state: bool,
    ) -> dict[str, Any]:
        user_id = requester.user_id
        memberships = await self._memberships_of(user_id, upto.position)
        ignored = await self.history.ignored.of(user_id) if self.history.ignored else NOBODY
        rooms: dict[str, dict[str, Any]] = {"join": {}, "invite": {}, "leave": {}, "knock": {}}
        since_pos = since.position if since else None
        account_data = await self._account_data(user_id, since_pos, upto.position)
        active = self._active_rooms(user_id, memberships, since, account_data, full_state)
        # Joined rooms are read concurrently (WAL/PostgreSQL readers do not block each other).
        joined_rooms: list[tuple[RoomCache, SyncToken | None, list[dict[str, Any]] | None]] = []
        for membership in memberships:
            if membership.forgotten or not _room_wanted(membership.room_id, sync_filter):
                continue
            if membership.stream_ordering > upto.position:
                continue  # committed after our snapshot: the next sync will see it
            room = await self.rooms.room(membership.room_id)
            changed = since_pos is None or membership.stream_ordering > since_pos
            if room is None:
                # A room this node is not in: an invite from another server, or its rejection.
                await self._remote_membership(
                    membership, changed, since_pos, full_state, rooms, ignored
                )
                continue
            if membership.membership == "join":
                if active is not None and not changed and room.room_id not in active:
                    continue  # nothing new in this room: skip its queries
                joined_rooms.append(
                    (
                        room,
                        since if not changed and not full_state else None,
                        # A room new to this sync gets all of its account data.
                        account_data.get(room.room_id, [])
                        if not changed or since_pos is None
                        else None,
                    )
                )
            elif membership.membership in ("invite", "knock") and (changed or full_state):
                if ignored and invited_by(
                    await self.rooms.get_event(membership.event_id), user_id, ignored
                ):
                    continue  # the spec: invites from ignored users are not sent
                key = "invite_state" if membership.membership == "invite" else "knock_state"
                rooms[membership.membership][room.room_id] = {
                    key: {"events": await self._stripped_state(room, membership)}
                }
            elif membership.membership in ("leave", "ban") and (
                (since_pos is not None and changed)
                or (sync_filter.include_leave and since_pos is None)
            ):
                rooms["leave"][room.room_id] = await self._left_room(
                    requester, room, membership, since, sync_filter
                )
        receipts = await counts.receipts_after(
            self.db,
            [(room.room_id, room_since.position if room_since else None)
             for room, room_since, _ in joined_rooms],
            upto.position,
        )  # fmt: skip
        entries = await asyncio.gather(
            *(
                self._joined_room(
                    requester,
                    room,
                    room_since,
                    upto,
                    sync_filter,
                    room_account_data,
                    receipts.get(room.room_id, []),
                )
                for room, room_since, room_account_data in joined_rooms
            )
        )
        shown = [room for (room, _, _), entry in zip(joined_rooms, entries, strict=True) if entry]
        unread = await counts.unread(self.db, self.rooms, shown, user_id)
        for room, entry in zip(shown, (e for e in entries if e), strict=True):
            entry.update(counts.entry(unread.get(room.room_id, {}), sync_filter.thread_counts))
            rooms["join"][room.room_id] = entry
        response: dict[str, Any] = {
            "next_batch": str(upto),
            "rooms": {k: v for k, v in rooms.items() if v},
            "account_data": {"events": account_data.get("", [])}
            if sync_filter.account_data
            else {"events": []},
            "presence": {"events": []},
        }
        joined = [m.room_id for m in memberships if m.membership == "join" and not m.forgotten]
        # Each extension fills its own sections of the response.
        await asyncio.gather(
            *(
                extension(requester, since_pos, upto.position, response, joined)
                for extension in self.extensions
            )
        )
        return response

    async def _memberships_of(self, user_id: str, upto: int) -> list[Membership]:
        """The user's memberships, read again only after one of them changed.

        Cached at ``upto``: every membership written at or below it had committed before
        the read, and anything written later is marked above it."""
        cached = self._memberships.get(user_id)
        if cached is not None and not self.db.changes.memberships.changed_since(user_id, cached[0]):
            return cached[1]
        async with self.db.read() as conn:
            found = await room_store.memberships_of_user(conn, user_id)
        self._memberships[user_id] = (upto, found)
        return found

    async def _account_data(
        self, user_id: str, since: int | None, upto: int
    ) -> dict[str, list[dict[str, Any]]]:
        """The user's account data changed in (since, upto] by room ID ("" for global)."""
        if since is not None and not self.db.changes.account_data.changed_since(user_id, since):
            return {}
        async with self.db.read() as conn:
            rows = await userdata_store.account_data_since(conn, user_id, since, upto)
        found: dict[str, list[dict[str, Any]]] = {}
        for room_id, data_type, content in rows:
            found.setdefault(room_id, []).append({"type": data_type, "content": content})
        return found

    def _active_rooms(
        self,
        user_id: str,
        memberships: list[Membership],
        since: SyncToken | None,
        account_data: dict[str, list[dict[str, Any]]],
        full_state: bool,
    ) -> set[str] | None:
        """Joined rooms that may have anything new since ``since`` (None: every room).

        Asked of the in-memory change trackers, not the database: a user in many quiet
        rooms gets an incremental sync without a query per room.
        """
        if since is None or full_state:
            return None
        changes = self.db.changes
        position = since.position
        found = {
            m.room_id
            for m in memberships
            if m.membership == "join"
            and not m.forgotten
            and (
                changes.room_events.changed_since(m.room_id, position)
                or changes.room_state.changed_since(m.room_id, position)
                or changes.receipts.changed_since(m.room_id, position)
                or self.typing.changed_since(m.room_id, since.typing)
            )
        }
        found.update(room_id for room_id in account_data if room_id)
        return found

    # ------------------------------------------------------------- joined rooms

    async def _joined_room(
        self,
        requester: Requester,
        room: RoomCache,
        since: SyncToken | None,
        upto: SyncToken,
        sync_filter: SyncFilter,
        room_account_data: list[dict[str, Any]] | None,
        receipts: list[userdata_store.Receipt],
    ) -> dict[str, Any] | None:
        """The room's section of the response, but its unread counts (read for all rooms at
        once); None when nothing changed in it since ``since``."""
        user_id = requester.user_id
        limit = sync_filter.timeline_limit
        after = since.position if since else None
        changes = self.db.changes
        recent: list[StoredEvent] = []
        changed_state: set[tuple[str, str]] | None = None
        async with self.db.read() as conn:
            # Only what the change trackers say may have changed is asked for.
            if after is None or changes.room_events.changed_since(room.room_id, after):
                recent = await event_store.room_events(
                    conn,
                    room.room_id,
                    after=after,
                    upto=upto.position,
                    limit=limit + 1,
                    backwards=True,
                    types=sync_filter.timeline_types,
                    not_types=sync_filter.timeline_not_types,
                )
            if after is not None:
                changed_state = (
                    await room_store.state_changes_after(conn, room.room_id, after, upto.position)
                    if changes.room_state.changed_since(room.room_id, after)
                    else set()
                )
            if room_account_data is None:
                rows = await userdata_store.account_data_since(conn, user_id, None, upto.position)
                room_account_data = [
                    {"type": t, "content": c} for r, t, c in rows if r == room.room_id
                ]
        limited = len(recent) > limit
        timeline = list(reversed(recent[:limit]))
        timeline = await self.history.visible(user_id, room, timeline)
        typing_changed = since is None or self.typing.changed_since(room.room_id, since.typing)
        if since is not None and not timeline and not changed_state and not receipts \
                and not typing_changed and not room_account_data:  # fmt: skip
            return None
        state_events = await self._state_for(
            room, user_id, timeline, since, changed_state, sync_filter
        )
        requester_key = (requester.user_id, requester.device_id)
        prev_batch = (
            stream_token(timeline[0].stream_ordering - 1)
            if timeline
            else stream_token(upto.position)
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
            "summary": self._summary(room, user_id),
        }
        return entry

    async def _state_for(
        self,
        room: RoomCache,
        user_id: str,
        timeline: list[StoredEvent],
        since: SyncToken | None,
        changed: set[tuple[str, str]] | None,
        sync_filter: SyncFilter,
    ) -> list[StoredEvent]:
        in_timeline = {e.event_id for e in timeline}
        if since is None:
            # The state at the start of the timeline.
            if timeline:
                first = timeline[0]
                async with self.db.read() as conn:
                    group = first.state_group
                    state = await self.rooms.state_store.get_state(conn, group)
                if first.state_key is not None:
                    # The group is the state after the first event: take the state before it.
                    state = await self._state_before(first)
            else:
                state = dict(room.state)
            keys = list(state)
        else:
            keys = list(changed or ())
            state = room.state
        if sync_filter.lazy_load_members:
            wanted = {e.sender for e in timeline} | {user_id}
            keys = [k for k in keys if k[0] != "m.room.member" or k[1] in wanted]
        ids = [state[k] for k in keys if k in state]
        found = await self.rooms.get_events(ids)
        return [found[i] for i in ids if i in found and i not in in_timeline]

    async def _state_before(self, event: StoredEvent) -> dict[tuple[str, str], str]:
        """The state before a state event: its group's parent (see RoomService._persist)."""
        async with self.db.read() as conn:
            parent = await self.rooms.state_store.parent(conn, event.state_group)
            return await self.rooms.state_store.get_state(conn, parent)

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
        if content:
            events.append({"type": "m.receipt", "content": content})
        return events

    def _summary(self, room: RoomCache, user_id: str) -> dict[str, Any]:
        joined = [u for u, m in room.members.items() if m == "join"]
        invited = [u for u, m in room.members.items() if m == "invite"]
        heroes = sorted(u for u in joined + invited if u != user_id)[:5]
        return {
            "m.heroes": heroes,
            "m.joined_member_count": len(joined),
            "m.invited_member_count": len(invited),
        }

    # ------------------------------------------------------------- other rooms

    async def _remote_membership(
        self,
        membership: Membership,
        changed: bool,
        since: int | None,
        full_state: bool,
        rooms: dict[str, dict[str, Any]],
        ignored: frozenset[str],
    ) -> None:
        if membership.membership == "invite" and (changed or full_state):
            invite = await self.rooms.get_event(membership.event_id)
            if invite is None or invited_by(invite, membership.user_id, ignored):
                return
            state = invite.pdu.get("unsigned", {}).get("invite_room_state", [])
            events = [e for e in state if isinstance(e, dict)] if isinstance(state, list) else []
            events.append(stripped_event(invite))
            rooms["invite"][membership.room_id] = {"invite_state": {"events": events}}
        elif membership.membership == "leave" and since is not None and changed:
            rooms["leave"][membership.room_id] = {
                "timeline": {
                    "events": [],
                    "limited": False,
                    "prev_batch": stream_token(membership.stream_ordering),
                },
                "state": {"events": []},
                "account_data": {"events": []},
            }

    async def _stripped_state(
        self, room: RoomCache, membership: Membership
    ) -> list[dict[str, Any]]:
        ids = [room.state[(t, "")] for t in STRIPPED_STATE_TYPES if (t, "") in room.state]
        found = await self.rooms.get_events([*ids, membership.event_id])
        events = [stripped_event(found[i]) for i in ids if i in found]
        own = found.get(membership.event_id)
        if own is not None:
            events.append(stripped_event(own))
        return events

    async def _left_room(
        self,
        requester: Requester,
        room: RoomCache,
        membership: Membership,
        since: SyncToken | None,
        sync_filter: SyncFilter,
    ) -> dict[str, Any]:
        limit = sync_filter.timeline_limit
        async with self.db.read() as conn:
            recent = await event_store.room_events(
                conn,
                room.room_id,
                after=since.position if since else None,
                upto=membership.stream_ordering,
                limit=limit + 1,
                backwards=True,
            )
        timeline = list(reversed(recent[:limit]))
        timeline = await self.history.visible(requester.user_id, room, timeline)
        return {
            "timeline": {
                "events": await self.history.serialize(
                    timeline, (requester.user_id, requester.device_id), include_room_id=False
                ),
                "limited": len(recent) > limit,
                "prev_batch": stream_token(
                    (timeline[0].stream_ordering - 1) if timeline else membership.stream_ordering
                ),
            },
            "state": {"events": []},
            "account_data": {"events": []},
        }


def _room_wanted(room_id: str, sync_filter: SyncFilter) -> bool:
    if sync_filter.rooms is not None and room_id not in sync_filter.rooms:
        return False
    return not (sync_filter.not_rooms and room_id in sync_filter.not_rooms)


def _has_news(response: dict[str, Any]) -> bool:
    if response["rooms"] or response["account_data"]["events"]:
        return True
    for key in ("to_device", "device_lists"):
        section = response.get(key)
        if section and any(section.get(k) for k in ("events", "changed", "left")):
            return True
    return False
