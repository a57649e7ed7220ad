"""Sliding sync: one response, from the connection's state as of ``pos``, long-polling
until something for it arrives (Synapse's ``SlidingSyncHandler``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

from homeserver.accounts.requester import Requester
from homeserver.common.notifier import Notifier, wait_for
from homeserver.rooms.history import HistoryService
from homeserver.storage import push as push_store
from homeserver.storage.userdata import Receipt
from homeserver.sync import counts
from homeserver.sync.params import SyncToken
from homeserver.sync.sliding.connections import (
    ConnectionState,
    ConnectionStore,
    Pos,
    record_unsent,
)
from homeserver.sync.sliding.extensions import ExtensionPass, Extensions
from homeserver.sync.sliding.own_receipts import OwnReceipts
from homeserver.sync.sliding.request import SlidingSyncRequest
from homeserver.sync.sliding.room_data import RoomData, RoomPass, RoomResult
from homeserver.sync.sliding.room_list import InterestedRooms, RoomLists
from homeserver.sync.sliding.unread import Threads, UnreadCounts
from homeserver.sync.typing import TypingService

MAX_TIMEOUT_MS = 300_000


class SlidingSyncService:
    def __init__(
        self,
        history: HistoryService,
        typing: TypingService,
        notifier: Notifier,
        connections: ConnectionStore,
        extensions: Extensions,
    ) -> None:
        self.history = history
        self.rooms = history.rooms
        self.db = history.rooms.db
        self.typing = typing
        self.notifier = notifier
        self.connections = connections
        self.extensions = extensions
        self.room_lists = RoomLists(history.rooms, history.ignored)
        self.room_data = RoomData(history)
        self.own_receipts = OwnReceipts(self.db)
        self.unread = UnreadCounts(self.db, history.rooms)

    async def sync(
        self,
        requester: Requester,
        request: SlidingSyncRequest,
        pos_text: str | None,
        timeout_ms: int,
    ) -> dict[str, Any]:
        pos = Pos.parse(pos_text) if pos_text else None
        if pos is not None and pos.token.position > self.db.stream.current:
            # A token from the future (tampered with): back to now, as Synapse does.
            pos = Pos(pos.position, SyncToken(self.db.stream.current, pos.token.typing))
        if pos is not None and pos.token.typing > self.typing.serial:
            # Typing is in memory: a token from before a restart sees every room's.
            pos = Pos(pos.position, SyncToken(pos.token.position, 0))
        previous = await self.connections.load(requester, request.conn_id, pos)
        deadline = time.monotonic() + min(max(timeout_ms, 0), MAX_TIMEOUT_MS) / 1000
        while True:
            with self.notifier.waiter(requester.user_id) as woken:
                upto = SyncToken(self.db.stream.current, self.typing.serial)
                response, state = await self._once(requester, request, pos, previous, upto)
                remaining = deadline - time.monotonic()
                if pos is None or _has_news(response) or remaining <= 0:
                    break
                if SyncToken(self.db.stream.current, self.typing.serial) == upto:
                    await wait_for(woken, remaining)
        keeps_state = bool(request.lists or request.room_subscriptions)
        position = await self.connections.finish(
            requester, request.conn_id, pos, previous, state if keeps_state else None
        )
        return {"pos": str(Pos(position, upto)), **response}

    async def _once(
        self,
        requester: Requester,
        request: SlidingSyncRequest,
        pos: Pos | None,
        previous: ConnectionState,
        upto: SyncToken,
    ) -> tuple[dict[str, Any], ConnectionState]:
        # Everything committed up to here is seen by the reads below (the counts' stamp).
        read_at = self.db.stream.current
        since = pos.token if pos else None
        since_pos = since.position if since else None
        interested = await self.room_lists.compute(
            requester.user_id, request, since_pos, upto.position
        )
        planned = await self._passes(interested, previous, since_pos, upto.position)
        # A room whose only news is the user's own receipt: its counts went down.
        read_since = await self._read_since(
            requester.user_id, interested, previous, since_pos, upto.position
        )
        # The timelines, and the user's receipts and unread counts of every room the
        # response may send (the receipts kept for the receipts extension too), at once.
        maybe_sent = [*(p.entry.room_id for p in planned), *sorted(read_since)]
        passes, early_counts = await asyncio.gather(
            self.room_data.read_timelines(planned),
            self._unread(requester.user_id, interested, maybe_sent, read_at),
        )
        results = await asyncio.gather(*(self.room_data.entry(requester, p) for p in passes))
        rooms = await self._rooms(requester, passes, results)
        for room_id in read_since:
            rooms.setdefault(room_id, {})
        state = self._new_state(previous, interested, passes, since_pos)
        for p, result in zip(passes, results, strict=True):
            room_id = p.entry.room_id
            if p.from_bound is None:
                state.lazy.pop(room_id, None)
            if result.lazy:
                state.lazy[room_id] = sorted(set(state.lazy.get(room_id, ())) | result.lazy)
        initial_rooms = {
            p.entry.room_id: [
                e["event_id"] for e in rooms.get(p.entry.room_id, {}).get("timeline", [])
            ]
            for p in passes
            if p.from_bound is None or p.expanded
        }
        own = await self.own_receipts.of(requester.user_id, [*rooms, *initial_rooms])
        # The counts and the extensions read apart (each its own statements): at once.
        _, extensions = await asyncio.gather(
            self._counts(requester.user_id, interested, rooms, own, read_at, early_counts),
            self.extensions.response(
                ExtensionPass(
                    requester,
                    request.extensions,
                    since,
                    upto,
                    interested,
                    initial_rooms,
                    previous,
                    state,
                    own,
                )
            ),
        )
        response: dict[str, Any] = {}
        if interested.lists:
            response["lists"] = interested.lists
        response["rooms"] = rooms
        response["extensions"] = {k: v for k, v in extensions.items() if v is not None}
        return response, state

    async def _rooms(
        self, requester: Requester, passes: list[RoomPass], results: list[RoomResult]
    ) -> dict[str, dict[str, Any]]:
        """The rooms' entries with their events, serialized for all rooms at once."""
        sent = [(p.entry.room_id, r) for p, r in zip(passes, results, strict=True) if r.entry]
        timeline = await self.history.serialize(
            [e for _, r in sent for e in r.timeline],
            (requester.user_id, requester.device_id),
            include_room_id=False,
        )
        state = await self.history.serialize(
            [e for _, r in sent for e in r.state], None, include_room_id=False
        )
        rooms: dict[str, dict[str, Any]] = {}
        for room_id, result in sent:
            assert result.entry is not None
            entry = rooms[room_id] = result.entry
            if result.timeline:  # an empty timeline is left out, as Synapse does
                entry["timeline"], timeline = (
                    timeline[: len(result.timeline)],
                    timeline[len(result.timeline) :],
                )
            if result.state:
                entry["required_state"], state = (
                    state[: len(result.state)],
                    state[len(result.state) :],
                )
        return rooms

    async def _passes(
        self,
        interested: InterestedRooms,
        previous: ConnectionState,
        since: int | None,
        upto: int,
    ) -> list[RoomPass]:
        """How each room of the response is to be read; rooms already sent with nothing
        new (by the change trackers) are left out."""
        changes = self.db.changes
        passes: list[tuple[Any, ...]] = []
        for room_id, config in interested.rooms.items():
            entry = interested.entries[room_id]
            prev_config = previous.configs.get(room_id)
            newly_joined = entry.kind == "join" and entry.changed
            from_bound: int | None = None
            if since is not None and not newly_joined and room_id in previous.rooms:
                status = previous.rooms[room_id]
                from_bound = since if status is None else status
            expanded = bool(
                from_bound is not None
                and prev_config is not None
                and prev_config.timeline_limit < config.timeline_limit
            )
            config_changed = bool(
                from_bound is not None
                and prev_config is not None
                and prev_config.combine(config).required_state != prev_config.required_state
            )
            lazy = (
                frozenset(previous.lazy.get(room_id, ())) if from_bound is not None else frozenset()
            )
            if (
                from_bound is not None
                and not (expanded or config_changed or entry.changed)
                and not changes.room_events.changed_since(room_id, from_bound)
                and not changes.room_state.changed_since(room_id, from_bound)
            ):
                continue
            passes.append(
                (entry, config, from_bound, expanded, prev_config if config_changed else None, lazy)
            )
        joined = [p[0].room_id for p in passes if p[0].kind == "join"]
        bumps = {
            room_id: found[1]
            for room_id, found in (await self.room_lists.latest.of(joined, upto)).items()
        }
        return [
            RoomPass(entry, config, from_bound, since, upto, expanded, previous_config, lazy,
                     bumps.get(entry.room_id))
            for entry, config, from_bound, expanded, previous_config, lazy in passes
        ]  # fmt: skip

    async def _read_since(
        self,
        user_id: str,
        interested: InterestedRooms,
        previous: ConnectionState,
        since: int | None,
        upto: int,
    ) -> set[str]:
        """Joined rooms of the response, live on the connection, where the user moved
        their read receipt since ``since`` (the change trackers say where to look)."""
        if since is None:
            return set()
        changes = self.db.changes.receipts
        candidates = [
            (room_id, since)
            for room_id in interested.rooms
            if interested.entries[room_id].kind == "join"
            and previous.rooms.get(room_id, 0) is None
            and changes.changed_since(room_id, since)
        ]
        if not candidates:
            return set()
        found = await counts.receipts_after(self.db, list(candidates), upto)
        return {
            room_id
            for room_id, receipts in found.items()
            if any(
                r.user_id == user_id and r.receipt_type in ("m.read", "m.read.private")
                for r in receipts
            )
        }

    async def _counts(
        self,
        user_id: str,
        interested: InterestedRooms,
        rooms: dict[str, dict[str, Any]],
        own: Mapping[str, list[Receipt]],
        read_at: int,
        early: tuple[set[str], dict[str, Threads]],
    ) -> None:
        """Each room's notification and highlight counts (the push counts of /sync);
        ``early``: those read already (the rooms, their counts)."""
        done, unread = early
        joined = [
            room
            for room_id in rooms
            if room_id not in done
            and interested.entries[room_id].kind == "join"
            and (room := interested.entries[room_id].room) is not None
        ]
        if joined:
            unread = {**unread, **await self.unread.of(user_id, joined, own, read_at)}
        for room_id, entry in rooms.items():
            n, h = push_store.all_threads(unread.get(room_id, {}))
            entry["notification_count"] = n
            entry["highlight_count"] = h

    async def _unread(
        self, user_id: str, interested: InterestedRooms, room_ids: list[str], read_at: int
    ) -> tuple[set[str], dict[str, Threads]]:
        """The user's read receipts of those rooms (kept), and the counts of the joined."""
        own = await self.own_receipts.of(user_id, room_ids)
        joined = [
            room
            for room_id in room_ids
            if interested.entries[room_id].kind == "join"
            and (room := interested.entries[room_id].room) is not None
        ]
        return {r.room_id for r in joined}, await self.unread.of(user_id, joined, own, read_at)

    def _new_state(
        self,
        previous: ConnectionState,
        interested: InterestedRooms,
        passes: list[RoomPass],
        since: int | None,
    ) -> ConnectionState:
        state = previous.copy()
        sent = {p.entry.room_id for p in passes}
        if since is not None:
            # Rooms live before but not sent now: sent up to ``since``, if anything came.
            record_unsent(
                state.rooms,
                (
                    room_id
                    for room_id in interested.all_rooms - interested.rooms.keys()
                    if self.db.changes.room_events.changed_since(room_id, since)
                ),
                since,
            )
        for p in passes:
            state.rooms[p.entry.room_id] = None
            if p.from_bound is None or p.expanded or p.previous is not None:
                state.configs[p.entry.room_id] = p.config
        for room_id in interested.rooms.keys() - sent:
            state.rooms.setdefault(room_id, None)
        return state


def _has_news(response: dict[str, Any]) -> bool:
    """Whether a response is worth returning before the timeout (Synapse's: rooms or
    extensions with something in them; lists alone are not news)."""
    if response["rooms"]:
        return True
    ext = response["extensions"]
    if ext.get("to_device", {}).get("events"):
        return True
    if any(ext.get("e2ee", {}).get("device_lists", {}).values()):
        return True
    if ext.get("account_data", {}).get("global") or ext.get("account_data", {}).get("rooms"):
        return True
    return bool(ext.get("receipts", {}).get("rooms") or ext.get("typing", {}).get("rooms"))
