"""Which of a user's rooms a sliding sync response covers: the rooms each list holds
(filtered, ordered by their latest activity, cut to the requested ranges, as Synapse's
``SYNC`` operations) and the rooms subscribed to.

A room is in the lists when the user is joined, invited, knocking, banned, or was kicked;
a room they left themselves only in the response right after their leave (Synapse's
``filter_membership_for_sync``), though it may be subscribed to; forgotten rooms never, nor
rooms the user has no membership in.  A room's activity is its latest
event the user may see: the latest event for a joined room, their membership otherwise.
"""

from __future__ import annotations

import heapq
from bisect import bisect_right
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from typing import Any

from homeserver.rooms.cache import RoomCache
from homeserver.rooms.ignored import NOBODY, IgnoredUsers, invited_by
from homeserver.rooms.reader import RoomReader
from homeserver.storage import rooms as room_store
from homeserver.storage import sliding_sync as store
from homeserver.storage import userdata as userdata_store
from homeserver.storage.database import Database
from homeserver.storage.events import StoredEvent
from homeserver.storage.rooms import Membership
from homeserver.sync.sliding.request import Filters, RoomConfig, SlidingSyncRequest

#: Synapse's SLIDING_SYNC_DEFAULT_BUMP_EVENT_TYPES: what counts as new activity.
BUMP_EVENT_TYPES = (
    "m.room.create",
    "m.room.message",
    "m.room.encrypted",
    "m.sticker",
    "m.call.invite",
    "m.poll.start",
    "m.beacon_info",
)


@dataclass
class RoomEntry:
    """A room the user may be shown: their membership, the room (None: on another server,
    an invite only), the event of their membership, and whether it is a DM."""

    membership: Membership
    room: RoomCache | None
    event: StoredEvent | None
    is_dm: bool
    #: Membership changed after the connection's stream token (newly joined or left).
    changed: bool
    #: Whether the room goes in lists (a room left long ago is only subscribed to).
    listed: bool = True

    @property
    def room_id(self) -> str:
        return self.membership.room_id

    @property
    def kind(self) -> str:
        return self.membership.membership


@dataclass
class InterestedRooms:
    """The lists of a response, the rooms it may show with their merged configs, and the
    rooms of each list (for the extensions' ``lists`` scoping)."""

    lists: dict[str, dict[str, Any]] = field(default_factory=dict)
    rooms: dict[str, RoomConfig] = field(default_factory=dict)
    entries: dict[str, RoomEntry] = field(default_factory=dict)
    list_rooms: dict[str, list[str]] = field(default_factory=dict)
    #: Every room in any list, in range or not.
    all_rooms: set[str] = field(default_factory=set)


class LatestPositions:
    """Each room's latest event and latest bump event positions (Synapse's
    ``SLIDING_SYNC_DEFAULT_BUMP_EVENT_TYPES``), read once, then brought forward from the
    trackers of accepted events (marked at commit) while they know the latest up to the
    request's position, read again otherwise."""

    def __init__(self, db: Database) -> None:
        self.db = db
        #: room ID -> ((latest, latest bump) or None for none, position read at)
        self._known: dict[str, tuple[tuple[int, int | None] | None, int]] = {}

    async def of(self, room_ids: Collection[str], upto: int) -> dict[str, tuple[int, int | None]]:
        changes = self.db.changes.room_events
        found: dict[str, tuple[int, int | None]] = {}
        missing: list[str] = []
        known_of, changed = self._known.get, changes.changed_since
        for room_id in room_ids:
            known = known_of(room_id)
            if known is not None and known[1] <= upto:
                if changed(room_id, known[1]):
                    known = self._forward(room_id, known, upto) if known[1] < upto else None
                if known is not None and not changed(room_id, known[1]):
                    if known[0] is not None:
                        found[room_id] = known[0]
                    continue
            missing.append(room_id)
        if missing:
            async with self.db.read() as conn:
                read = await store.latest_positions(conn, missing, upto, BUMP_EVENT_TYPES)
            for room_id in missing:
                self._known[room_id] = (read.get(room_id), upto)
            found.update(read)
        return found

    def _forward(
        self, room_id: str, known: tuple[tuple[int, int | None] | None, int], upto: int
    ) -> tuple[tuple[int, int | None] | None, int] | None:
        """``known`` brought up to ``upto``, or None when the trackers cannot tell: every
        accepted event committed at or before ``upto`` marked them before ``upto`` was
        reached, so when their last marks are at or before it, they are the latest."""
        changes = self.db.changes
        accepted, by_type = changes.accepted_events, changes.accepted_types
        if known[1] < accepted.earliest:
            return None
        marks = [accepted.last(room_id)] + [by_type.last((room_id, t)) for t in BUMP_EVENT_TYPES]
        if any(m is not None and m > upto for m in marks):
            return None
        latest, bump = known[0] if known[0] is not None else (None, None)
        if marks[0] is not None:
            latest = marks[0] if latest is None else max(latest, marks[0])
        for m in marks[1:]:
            if m is not None:
                bump = m if bump is None else max(bump, m)
        forwarded = ((latest, bump) if latest is not None else None, upto)
        self._known[room_id] = forwarded
        return forwarded


@dataclass
class _Entries:
    """A user's rooms as of ``upto`` with no membership marked changed, built from one
    read of their memberships (valid while that read is) and their ignore list."""

    memberships: list[Membership]
    ignored: frozenset[str]
    upto: int
    entries: dict[str, RoomEntry] = field(default_factory=dict)
    #: (membership stream position, room ID) of the entries, in order.
    by_position: list[tuple[int, str]] = field(default_factory=list)
    #: Rooms of the entries this node did not know the state of.
    roomless: list[str] = field(default_factory=list)


class RoomLists:
    def __init__(self, rooms: RoomReader, ignored: IgnoredUsers | None = None) -> None:
        self.rooms = rooms
        self.db = rooms.db
        #: homeserver.rooms.ignored.IgnoredUsers (invites from ignored users are hidden).
        self.ignored = ignored
        self.latest = LatestPositions(rooms.db)
        #: user ID -> (stream position read at, memberships, m.direct room IDs); valid
        #: while the change trackers have nothing newer for the user.
        self._users: dict[str, tuple[int, list[Membership], set[str]]] = {}
        #: user ID -> their entries, built from the memberships in ``_users``.
        self._bases: dict[str, _Entries] = {}

    async def compute(
        self, user_id: str, request: SlidingSyncRequest, since: int | None, upto: int
    ) -> InterestedRooms:
        entries = await self._entries(user_id, since, upto)
        result = InterestedRooms(entries=entries)
        activity: dict[str, int] | None = None
        for name, config in request.lists.items():
            if config.filters is None:
                kept = [e for e in entries.values() if e.listed]
            else:
                kept = [
                    e for e in entries.values() if e.listed and await self._keep(e, config.filters)
                ]
            result.all_rooms.update(e.room_id for e in kept)
            ops: list[dict[str, Any]] = []
            in_list: list[str] = []
            if config.ranges:
                if activity is None:
                    activity = await self._activity(entries, upto)
                # The rooms up to the end of the last range, newest first (as sorted).
                ordered = heapq.nlargest(
                    max(end for _, end in config.ranges) + 1,
                    kept,
                    key=lambda e: activity.get(e.membership.room_id, 0),
                )
                for start, end in config.ranges:
                    ids = [e.room_id for e in ordered[start : end + 1]]
                    ops.append({"op": "SYNC", "range": [start, end], "room_ids": ids})
                    in_list += ids
                    for room_id in ids:
                        known = result.rooms.get(room_id)
                        result.rooms[room_id] = known.combine(config.room) if known else config.room
            result.lists[name] = {"count": len(kept), "ops": ops}
            result.list_rooms[name] = in_list
        for room_id, room_config in request.room_subscriptions.items():
            if room_id not in entries:
                continue  # not a room of the user's: nothing of it
            result.all_rooms.add(room_id)
            known = result.rooms.get(room_id)
            result.rooms[room_id] = known.combine(room_config) if known else room_config
        return result

    async def _entries(self, user_id: str, since: int | None, upto: int) -> dict[str, RoomEntry]:
        """The user's rooms as of ``upto``; those whose membership changed after ``since``
        marked.  Built once per change of the user's memberships, m.direct or ignore
        list (the :class:`_Entries` below), then only the few changed ones copied."""
        memberships, dm_rooms = await self._memberships(user_id, upto)
        ignored = await self.ignored.of(user_id) if self.ignored is not None else NOBODY
        base = self._bases.get(user_id)
        if (
            base is None
            or base.memberships is not memberships
            or base.ignored != ignored
            or base.upto > upto
            # A room of another server this node has come to know since.
            or any(self.rooms.cached(room_id) is not None for room_id in base.roomless)
        ):
            base = await self._base(user_id, memberships, dm_rooms, ignored, upto)
            self._bases[user_id] = base
        if since is None:
            return base.entries
        entries = dict(base.entries)
        for _, room_id in base.by_position[bisect_right(base.by_position, (since, "\uffff")) :]:
            entry = base.entries.get(room_id)
            if entry is not None:
                entries[room_id] = replace(entry, changed=True, listed=True)
        return entries

    async def _base(
        self,
        user_id: str,
        memberships: list[Membership],
        dm_rooms: set[str],
        ignored: frozenset[str],
        upto: int,
    ) -> _Entries:
        kept = [m for m in memberships if not m.forgotten and m.stream_ordering <= upto]
        events = await self.rooms.get_events(
            m.event_id for m in kept if m.membership in ("leave", "invite", "knock")
        )
        base = _Entries(memberships, ignored, upto)
        for m in kept:
            event = events.get(m.event_id)
            if m.membership == "invite" and invited_by(event, user_id, ignored):
                continue
            # A leave of one's own is in the lists only right after it (kicks stay); the
            # room may still be subscribed to, up to the leave.
            own_leave = m.membership == "leave" and (event is None or event.sender == user_id)
            room = await self.rooms.room(m.room_id)
            if room is None:
                base.roomless.append(m.room_id)
            base.entries[m.room_id] = RoomEntry(
                m, room, event, m.room_id in dm_rooms, False, listed=not own_leave
            )
            base.by_position.append((m.stream_ordering, m.room_id))
        base.by_position.sort()
        return base

    async def _memberships(self, user_id: str, upto: int) -> tuple[list[Membership], set[str]]:
        changes = self.db.changes
        known = self._users.get(user_id)
        if (
            known is not None
            and known[0] <= upto
            and not changes.memberships.changed_since(user_id, known[0])
            and not changes.account_data.changed_since(user_id, known[0])
        ):
            return known[1], known[2]
        async with self.db.read() as conn:
            memberships = await room_store.memberships_of_user(conn, user_id)
            direct = await userdata_store.get_account_data(conn, user_id, "", "m.direct")
        found = (upto, memberships, _dm_rooms(direct))
        self._users[user_id] = found
        return found[1], found[2]

    async def _activity(self, entries: dict[str, RoomEntry], upto: int) -> dict[str, int]:
        joined = [e.room_id for e in entries.values() if e.kind == "join"]
        latest = {
            room_id: found[0] for room_id, found in (await self.latest.of(joined, upto)).items()
        }
        return {
            e.room_id: latest.get(e.room_id, e.membership.stream_ordering)
            if e.kind == "join"
            else e.membership.stream_ordering
            for e in entries.values()
        }

    async def _keep(self, entry: RoomEntry, filters: Filters | None) -> bool:
        if filters is None:
            return True
        if filters.is_dm is not None and filters.is_dm != entry.is_dm:
            return False
        if filters.is_invite is not None and filters.is_invite != (entry.kind == "invite"):
            return False
        if filters.is_encrypted is not None:
            encrypted = await self._has_state(entry, "m.room.encryption")
            if encrypted != filters.is_encrypted:
                return False
        if filters.room_types is not None or filters.not_room_types is not None:
            room_type = await self._room_type(entry)
            if filters.not_room_types is not None and room_type in filters.not_room_types:
                return False
            if filters.room_types is not None and room_type not in filters.room_types:
                return False
        if filters.tags is not None or filters.not_tags is not None:
            tags = await self._tags(entry)
            if filters.not_tags and tags & set(filters.not_tags):
                return False
            if filters.tags and not tags & set(filters.tags):
                return False
        return True

    async def _has_state(self, entry: RoomEntry, event_type: str) -> bool:
        if entry.room is not None:
            return (event_type, "") in entry.room.state
        return any(e.get("type") == event_type for e in _invite_state(entry))

    async def _room_type(self, entry: RoomEntry) -> str | None:
        if entry.room is not None:
            content = await self.rooms.state_content(entry.room, "m.room.create")
        else:
            found = [e for e in _invite_state(entry) if e.get("type") == "m.room.create"]
            content = found[0].get("content", {}) if found else {}
        value = content.get("type") if isinstance(content, dict) else None
        return value if isinstance(value, str) else None

    async def _tags(self, entry: RoomEntry) -> set[str]:
        async with self.db.read() as conn:
            content = await userdata_store.get_account_data(
                conn, entry.membership.user_id, entry.room_id, "m.tag"
            )
        tags = (content or {}).get("tags")
        return set(tags) if isinstance(tags, dict) else set()


def _invite_state(entry: RoomEntry) -> list[dict[str, Any]]:
    state = entry.event.pdu.get("unsigned", {}).get("invite_room_state") if entry.event else None
    return [e for e in state if isinstance(e, dict)] if isinstance(state, list) else []


def _dm_rooms(direct: Any) -> set[str]:
    """Room IDs in the user's ``m.direct`` account data."""
    found: set[str] = set()
    if isinstance(direct, dict):
        for rooms in direct.values():
            if isinstance(rooms, list):
                found.update(r for r in rooms if isinstance(r, str))
    return found
