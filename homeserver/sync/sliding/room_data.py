"""A room's entry in a sliding sync response, as Synapse's ``get_room_sync_data`` reads it:
its timeline (the newest events up to ``timeline_limit``: all of history for a room the
connection has not been sent, else what came after it was last sent), the state the
client asked for (``required_state``: ``*``, ``$LAZY``, ``$ME``), name, avatar, heroes and
member counts when they may have changed, and the stripped state of an invite.

What a user sees of a room is decided by :mod:`homeserver.rooms.visibility`: nothing after
their leave, kick or ban.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from homeserver.accounts.requester import Requester
from homeserver.rooms.cache import StateKey
from homeserver.rooms.eventformat import stripped_event
from homeserver.rooms.history import HistoryService, stream_token
from homeserver.rooms.visibility import Reader
from homeserver.storage import events as event_store
from homeserver.storage import rooms as room_store
from homeserver.storage import sliding_sync as store
from homeserver.storage.events import StoredEvent
from homeserver.sync import other_rooms
from homeserver.sync.joined import summary
from homeserver.sync.sliding.request import RoomConfig
from homeserver.sync.sliding.required_state import required_keys
from homeserver.sync.sliding.room_list import BUMP_EVENT_TYPES, RoomEntry


@dataclass(frozen=True)
class RoomPass:
    """How one room is read in a response: from where (None: from the start, an initial
    entry), up to where, with which config, and whether the timeline limit grew."""

    entry: RoomEntry
    config: RoomConfig
    from_bound: int | None
    since: int | None
    upto: int
    expanded: bool
    #: The config the room was last sent with (None: none known).
    previous: RoomConfig | None
    #: The members sent for ``$LAZY`` on this connection so far.
    lazy_sent: frozenset[str]
    #: The room's latest bump event at ``upto`` (None: none, or not joined).
    latest_bump: int | None
    #: The timeline's events, newest first, one more than the limit, when read already
    #: for all rooms at once (:meth:`RoomData.read_timelines`).
    recent: list[StoredEvent] | None = None
    #: The room's first members as heroes are picked from, when read already.
    hero_candidates: list[tuple[str, str]] | None = None

    @property
    def timeline_from(self) -> int | None:
        """Where the timeline starts (None: from the start of the room)."""
        return None if self.expanded else self.from_bound

    @property
    def timeline_upto(self) -> int:
        """Where the timeline ends: ``upto``, or the user's leave, kick or ban."""
        if self.entry.kind in ("leave", "ban"):
            return min(self.upto, self.entry.membership.stream_ordering)
        return self.upto

    @property
    def has_timeline(self) -> bool:
        return (
            self.config.timeline_limit > 0
            and self.entry.kind not in ("invite", "knock")
            and self.entry.room is not None
        )


@dataclass
class RoomResult:
    """A room's entry but its events, which the caller serializes for all rooms at once
    (a query for all of them rather than one per room): the timeline and the state."""

    entry: dict[str, Any] | None
    timeline: list[StoredEvent] = field(default_factory=list)
    state: list[StoredEvent] = field(default_factory=list)
    #: The members sent for ``$LAZY``.
    lazy: set[str] = field(default_factory=set)


class RoomData:
    def __init__(self, history: HistoryService) -> None:
        self.history = history
        self.rooms = history.rooms
        self.visibility = history.visibility
        self.db = history.rooms.db

    async def entry(self, requester: Requester, p: RoomPass) -> RoomResult:
        """The room's entry (None when nothing changed in it: an incremental pass)."""
        entry = p.entry
        initial = p.from_bound is None
        result: dict[str, Any] = {}
        if entry.kind in ("invite", "knock"):
            # As Synapse: the stripped state each time, with the name and avatar.
            result["invite_state"] = await self._stripped(entry)
            if entry.room is not None and initial:
                contents = await self._contents(
                    entry.room.state, [("m.room.name", ""), ("m.room.avatar", "")]
                )
                name = contents.get(("m.room.name", ""), {}).get("name")
                avatar = contents.get(("m.room.avatar", ""), {}).get("url")
                if isinstance(name, str) and name:
                    result["name"] = name
                if isinstance(avatar, str) and avatar:
                    result["avatar"] = avatar
            result["bump_stamp"] = entry.membership.stream_ordering
            return RoomResult(_finish(result, initial, entry))
        room = entry.room
        if room is None:  # a rejected invite to a room on another server
            if not (initial or entry.changed):
                return RoomResult(None)
            result["limited"] = False
            result["prev_batch"] = stream_token(entry.membership.stream_ordering)
            result["num_live"] = 0
            result["bump_stamp"] = entry.membership.stream_ordering
            return RoomResult(_finish(result, initial, entry))
        user_id = requester.user_id
        horizon = entry.event if entry.kind in ("leave", "ban") else None
        if entry.kind in ("leave", "ban") and horizon is None:
            horizon = await self.rooms.get_event(entry.membership.event_id)
        reader = Reader(user_id, room, entry.kind, horizon)
        to_bound = reader.caps(p.upto)
        assert to_bound is not None
        timeline, limited = await self._timeline(user_id, p, to_bound)
        if p.config.timeline_limit > 0:
            result["limited"] = limited
            result["prev_batch"] = stream_token(
                timeline[0].stream_ordering - 1 if timeline else to_bound
            )
            result["num_live"] = _num_live(timeline, p.since)
            if p.expanded:
                result["unstable_expanded_timeline"] = True
        state = await self.visibility.state_now(reader)
        changed: set[StateKey] = set()
        if not initial:
            assert p.from_bound is not None
            if self.db.changes.room_state.changed_since(room.room_id, p.from_bound):
                async with self.db.read() as conn:
                    changed = await room_store.state_changes_after(
                        conn, room.room_id, p.from_bound, to_bound
                    )
            if entry.changed:
                changed.add(("m.room.member", user_id))
        member_changed = any(k[0] == "m.room.member" for k in changed)
        contents = await self._contents(state, [("m.room.name", ""), ("m.room.avatar", "")])
        name = contents.get(("m.room.name", ""), {}).get("name")
        if (initial or ("m.room.name", "") in changed) and isinstance(name, str) and name:
            result["name"] = name
        avatar = contents.get(("m.room.avatar", ""), {}).get("url")
        if (initial or ("m.room.avatar", "") in changed) and isinstance(avatar, str) and avatar:
            result["avatar"] = avatar
        # Heroes as Synapse sends them: it reads the name only when it sends it (from the
        # start, or when it changed), so a membership change in a named room brings heroes.
        name_read = initial or ("m.room.name", "") in changed
        if (initial or member_changed) and not (name_read and isinstance(name, str) and name):
            heroes = await self._heroes(reader, state, p) if entry.kind == "join" else []
            if heroes:
                result["heroes"] = heroes
        if (initial or member_changed) and entry.kind == "join":
            counts = summary(room, user_id)
            result["joined_count"] = counts["m.joined_member_count"]
            result["invited_count"] = counts["m.invited_member_count"]
        keys = required_keys(
            p.config,
            p.previous,
            user_id,
            state,
            timeline,
            initial=initial,
            limited=limited,
            changed=changed,
            lazy_sent=p.lazy_sent,
        )
        lazy = {k[1] for k in keys if k[0] == "m.room.member"} if p.config.lazy else set()
        state_events = (
            await self.visibility.state_events({k: state[k] for k in keys if k in state})
            if keys
            else []
        )
        bump = max(
            (e.stream_ordering for e in timeline if e.type in BUMP_EVENT_TYPES), default=None
        )
        if entry.kind != "join" or initial or limited:
            bump = p.latest_bump if entry.kind == "join" else None
            if bump is None:
                bump = entry.membership.stream_ordering
        if bump is not None:
            result["bump_stamp"] = max(bump, 0)
        if not initial and not (
            {"name", "avatar", "heroes", "joined_count"} & result.keys() or timeline or state_events
        ):
            return RoomResult(None)
        return RoomResult(_finish(result, initial, entry), timeline, state_events, lazy)

    async def _timeline(
        self, user_id: str, p: RoomPass, to_bound: int
    ) -> tuple[list[StoredEvent], bool]:
        limit = p.config.timeline_limit
        if limit <= 0:
            return [], False
        room = p.entry.room
        assert room is not None
        recent = p.recent
        if recent is None:
            async with self.db.read() as conn:
                recent = await event_store.room_events(
                    conn,
                    room.room_id,
                    after=p.timeline_from,
                    upto=to_bound,
                    limit=limit + 1,
                    backwards=True,
                )
        timeline = list(reversed(recent[:limit]))
        return await self.visibility.events(user_id, room, timeline), len(recent) > limit

    async def read_timelines(self, passes: list[RoomPass]) -> list[RoomPass]:
        """The passes with their timelines read, in one statement for all rooms of the
        same timeline limit, and the hero candidates of the rooms that need them."""
        by_limit: dict[int, list[RoomPass]] = {}
        for p in passes:
            if p.has_timeline:
                by_limit.setdefault(p.config.timeline_limit, []).append(p)
        found: dict[str, list[StoredEvent]] = {}
        for limit, same in by_limit.items():
            async with self.db.read() as conn:
                found.update(
                    await event_store.recent_events_of_rooms(
                        conn,
                        [(p.entry.room_id, p.timeline_from, p.timeline_upto) for p in same],
                        limit + 1,
                    )
                )
        # Heroes of the unnamed joined rooms sent from the start.
        unnamed = [
            p.entry.room_id
            for p in passes
            if p.from_bound is None
            and p.entry.kind == "join"
            and p.entry.room is not None
            and ("m.room.name", "") not in p.entry.room.state
        ]
        heroes: dict[str, list[tuple[str, str]]] = {}
        if unnamed:
            async with self.db.read() as conn:
                heroes = await store.hero_candidates(conn, unnamed)
        return [
            replace(
                p,
                recent=found.get(p.entry.room_id, []) if p.has_timeline else None,
                hero_candidates=heroes.get(p.entry.room_id, [])
                if p.entry.room_id in unnamed
                else None,
            )
            for p in passes
        ]

    async def _stripped(self, entry: RoomEntry) -> list[dict[str, Any]]:
        if entry.room is not None:
            return await other_rooms.stripped_state(self.rooms, entry.room, entry.membership)
        event = entry.event
        if event is None:
            return []
        state = event.pdu.get("unsigned", {}).get("invite_room_state", [])
        events = [e for e in state if isinstance(e, dict)] if isinstance(state, list) else []
        return [*events, stripped_event(event)]

    async def _contents(
        self, state: Mapping[StateKey, str], keys: list[StateKey]
    ) -> dict[StateKey, dict[str, Any]]:
        found = await self.rooms.get_events(state[k] for k in keys if k in state)
        result: dict[StateKey, dict[str, Any]] = {}
        for k in keys:
            event = found.get(state.get(k, ""))
            content = event.pdu.get("content") if event else None
            if isinstance(content, dict):
                result[k] = content
        return result

    async def _heroes(
        self, reader: Reader, state: Mapping[StateKey, str], p: RoomPass
    ) -> list[dict[str, Any]]:
        """Up to 5 members other than the reader, as Synapse picks them: joined, then
        invited, each in the order they got there; else those who left or were banned."""
        candidates = p.hero_candidates
        if candidates is None:
            async with self.db.read() as conn:
                found = await store.hero_candidates(conn, [reader.room.room_id])
            candidates = found.get(reader.room.room_id, [])
        others = [(u, m) for u, m in candidates if u != reader.user_id]
        present = [u for u, m in others if m in ("join", "invite")]
        gone = [u for u, m in others if m in ("leave", "ban")]
        hero_ids = (present or gone)[:5]
        keys = [("m.room.member", u) for u in hero_ids]
        contents = await self._contents(state, keys)
        heroes = []
        for user_id, key in zip(hero_ids, keys, strict=True):
            hero: dict[str, Any] = {"user_id": user_id}
            content = contents.get(key, {})
            if isinstance(content.get("displayname"), str):
                hero["displayname"] = content["displayname"]
            if isinstance(content.get("avatar_url"), str):
                hero["avatar_url"] = content["avatar_url"]
            heroes.append(hero)
        return heroes


def _finish(result: dict[str, Any], initial: bool, entry: RoomEntry) -> dict[str, Any]:
    if initial:
        result["initial"] = True
    if entry.is_dm:
        result["is_dm"] = True
    return result


def _num_live(timeline: list[StoredEvent], since: int | None) -> int:
    if since is None:
        return 0
    live = 0
    for event in reversed(timeline):
        if event.stream_ordering <= since:
            break
        live += 1
    return live
