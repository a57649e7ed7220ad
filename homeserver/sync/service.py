"""/sync: initial and incremental, long-polling, with filters and lazy-loaded members.

A sync token is ``s<stream position>_<typing serial>``.  Everything persisted (events,
state deltas, memberships, receipts, account data, to-device messages, device list
changes) has a position in the node's single stream, so "what changed since" is a range
query per kind of data.

:class:`SyncService` waits for news and decides which rooms a response shows; the
sections are read by :mod:`.joined` (joined rooms) and :mod:`.other_rooms` (invites,
knocks, rooms left); :mod:`.params` has the token and the filter, :mod:`.counts` the
unread counts and receipts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from homeserver.accounts.service import Requester
from homeserver.common.clock import Clock
from homeserver.common.notifier import Notifier, wait_for
from homeserver.rooms.cache import RoomCache
from homeserver.rooms.history import HistoryService
from homeserver.rooms.ignored import NOBODY, invited_by
from homeserver.rooms.reader import RoomReader
from homeserver.storage import rooms as room_store
from homeserver.storage import userdata as userdata_store
from homeserver.storage.rooms import Membership
from homeserver.sync import counts, other_rooms
from homeserver.sync.joined import JoinedRoomSync

# SyncFilter is imported from here by the client API's /sync route.
from homeserver.sync.params import SyncFilter as SyncFilter
from homeserver.sync.params import SyncRequest, SyncToken
from homeserver.sync.ports import SyncExtension
from homeserver.sync.typing import TypingService

MAX_TIMEOUT_MS = 300_000

#: A joined room whose section is to be read: the room, where its section starts (None:
#: from the start, a room new to this sync) and its account data (None: to be read).
_JoinedRoom = tuple[RoomCache, SyncToken | None, list[dict[str, Any]] | None]


class SyncService:
    def __init__(
        self,
        rooms: RoomReader,
        history: HistoryService,
        typing: TypingService,
        notifier: Notifier,
        clock: Clock,
        extensions: Sequence[SyncExtension] = (),
    ) -> None:
        self.rooms = rooms
        self.history = history
        self.typing = typing
        self.notifier = notifier
        self.clock = clock
        self.db = rooms.db
        #: Extra sections contributed by other services (to-device, device lists, keys).
        self.extensions = tuple(extensions)
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
        req = SyncRequest(requester, since, upto, sync_filter, full_state)
        user_id = requester.user_id
        memberships = await self._memberships_of(user_id, upto.position)
        ignored = await self.history.ignored.of(user_id) if self.history.ignored else NOBODY
        rooms: dict[str, dict[str, Any]] = {"join": {}, "invite": {}, "leave": {}, "knock": {}}
        account_data = await self._account_data(user_id, req.since_pos, upto.position)
        joined_rooms = await self._rooms_to_show(req, memberships, account_data, ignored, rooms)
        await self._joined_sections(req, joined_rooms, rooms["join"])
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
                extension(requester, req.since_pos, upto.position, response, joined)
                for extension in self.extensions
            )
        )
        if not sync_filter.presence:
            response["presence"] = {"events": []}
        return response

    async def _rooms_to_show(
        self,
        req: SyncRequest,
        memberships: list[Membership],
        account_data: dict[str, list[dict[str, Any]]],
        ignored: frozenset[str],
        rooms: dict[str, dict[str, Any]],
    ) -> list[_JoinedRoom]:
        """The joined rooms whose sections are to be read; the sections of the other rooms
        to show are put in ``rooms`` directly."""
        since_pos = req.since_pos
        active = self._active_rooms(
            req.user_id, memberships, req.since, account_data, req.full_state
        )
        joined_rooms: list[_JoinedRoom] = []
        for membership in memberships:
            if membership.forgotten or not req.sync_filter.wants_room(membership.room_id):
                continue
            if membership.stream_ordering > req.upto.position:
                continue  # committed after our snapshot: the next sync will see it
            room = await self.rooms.room(membership.room_id)
            changed = since_pos is None or membership.stream_ordering > since_pos
            if room is None:
                # A room this node is not in: an invite from another server, or its rejection.
                await other_rooms.remote_membership(
                    self.rooms, membership, changed, since_pos, req.full_state, rooms, ignored
                )
            elif membership.membership != "join":
                await self._other_room(req, room, membership, changed, ignored, rooms)
            # Else a joined room, skipped (with its queries) when it has nothing new.
            elif active is None or changed or room.room_id in active:
                joined_rooms.append(
                    (
                        room,
                        req.since if not changed and not req.full_state else None,
                        # A room new to this sync gets all of its account data.
                        account_data.get(room.room_id, [])
                        if not changed or since_pos is None
                        else None,
                    )
                )
        return joined_rooms

    async def _other_room(
        self,
        req: SyncRequest,
        room: RoomCache,
        membership: Membership,
        changed: bool,
        ignored: frozenset[str],
        rooms: dict[str, dict[str, Any]],
    ) -> None:
        """Put the section of a room the user is invited to, knocked on, left or is banned
        from in ``rooms``, when it is to be shown."""
        since_pos = req.since_pos
        if membership.membership in ("invite", "knock") and (changed or req.full_state):
            if ignored and invited_by(
                await self.rooms.get_event(membership.event_id), req.user_id, ignored
            ):
                return  # the spec: invites from ignored users are not sent
            key = "invite_state" if membership.membership == "invite" else "knock_state"
            rooms[membership.membership][room.room_id] = {
                key: {"events": await other_rooms.stripped_state(self.rooms, room, membership)}
            }
        elif membership.membership in ("leave", "ban") and (
            (since_pos is not None and changed)
            or (req.sync_filter.include_leave and since_pos is None)
        ):
            rooms["leave"][room.room_id] = await other_rooms.left_room(
                self.rooms, self.history, req.requester, room, membership, req.since,
                req.sync_filter,
            )  # fmt: skip

    async def _joined_sections(
        self, req: SyncRequest, joined_rooms: list[_JoinedRoom], joined: dict[str, Any]
    ) -> None:
        """Put the sections of the joined rooms, with their unread counts, in ``joined``
        (a room with nothing new since the last sync has none)."""
        receipts = await counts.receipts_after(
            self.db,
            [(room.room_id, room_since.position if room_since else None)
             for room, room_since, _ in joined_rooms],
            req.upto.position,
        )  # fmt: skip
        joined_sync = JoinedRoomSync(self.rooms, self.history, self.typing)
        # Joined rooms are read concurrently (WAL/PostgreSQL readers do not block each other).
        entries = await asyncio.gather(
            *(
                joined_sync.section(
                    req, room, room_since, room_account_data, receipts.get(room.room_id, [])
                )
                for room, room_since, room_account_data in joined_rooms
            )
        )
        shown = [room for (room, _, _), entry in zip(joined_rooms, entries, strict=True) if entry]
        unread = await counts.unread(self.db, self.rooms, shown, req.user_id)
        for room, entry in zip(shown, (e for e in entries if e), strict=True):
            entry.update(counts.entry(unread.get(room.room_id, {}), req.sync_filter.thread_counts))
            joined[room.room_id] = entry

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


def _has_news(response: dict[str, Any]) -> bool:
    if response["rooms"] or response["account_data"]["events"]:
        return True
    if response["presence"]["events"]:
        return True
    for key in ("to_device", "device_lists"):
        section = response.get(key)
        if section and any(section.get(k) for k in ("events", "changed", "left")):
            return True
    return False
