"""The extensions of a sliding sync response (Synapse's ``extensions`` handler): to-device
messages, e2ee (device lists, one-time key counts), account data, receipts and typing.

Each reuses what /sync reads: the keys service (through :mod:`.ports`), the account data
and receipts as :mod:`homeserver.sync.counts` reads them, the typing service, and the push
rules' sync extension for the default rules on a connection's first response.  account
data, receipts and typing cover the rooms of the lists and subscriptions they name
(``*``: all of them) that this response is about.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from homeserver.accounts.requester import Requester
from homeserver.storage import userdata as userdata_store
from homeserver.storage.database import Database
from homeserver.storage.userdata import Receipt
from homeserver.sync import counts
from homeserver.sync.joined import receipts_event
from homeserver.sync.params import SyncToken
from homeserver.sync.ports import SyncExtension
from homeserver.sync.sliding.connections import (
    ConnectionState,
    RoomStatuses,
    record_sent,
    record_unsent,
)
from homeserver.sync.sliding.ports import DeviceKeys
from homeserver.sync.sliding.request import WILDCARD, ExtensionsConfig, ScopedExtension
from homeserver.sync.sliding.room_list import InterestedRooms
from homeserver.sync.sliding.timeline_receipts import TimelineReceipts
from homeserver.sync.typing import TypingService

#: Users whose account data is kept in memory (all forgotten past this).
_CACHED_USERS = 10_000


@dataclass(frozen=True)
class ExtensionPass:
    requester: Requester
    config: ExtensionsConfig
    since: SyncToken | None
    upto: SyncToken
    interested: InterestedRooms
    #: Rooms sent from the start in this response (new to the connection, or with a
    #: grown timeline), with the IDs of their timeline events.
    initial_rooms: dict[str, list[str]]
    #: The connection's state before this response, and the one being built.
    previous: ConnectionState
    state: ConnectionState
    #: The user's m.read and m.read.private receipts in the rooms sent from the start.
    own_receipts: Mapping[str, list[Receipt]] | None = None


class Extensions:
    def __init__(
        self,
        db: Database,
        keys: DeviceKeys,
        typing: TypingService,
        push_rules: SyncExtension | None = None,
    ) -> None:
        self.db = db
        self.keys = keys
        self.typing = typing
        self.push_rules = push_rules
        #: Devices with to-device messages handed out and not yet acknowledged.
        self._unacked: set[tuple[str, str]] = set()
        #: user ID -> (stream position read at, all their account data): a connection's
        #: first response reads it from here while the tracker saw no change of theirs.
        self._all_account_data: dict[str, tuple[int, list[tuple[str, str, Any]]]] = {}
        self.timeline_receipts = TimelineReceipts(db)

    async def response(self, p: ExtensionPass) -> dict[str, Any]:
        found: dict[str, Any] = {}
        config = p.config
        if config.to_device:
            found["to_device"] = await self._to_device(p)
        if config.e2ee:
            one_time, fallback = await self.keys.one_time_key_counts(p.requester)
            e2ee: dict[str, Any] = {
                "device_one_time_keys_count": one_time,
                "device_unused_fallback_key_types": fallback,
            }
            if p.since is not None:
                changed: list[str] = []
                left: list[str] = []
                if self._device_lists_may_have_changed(p, p.since.position):
                    changed, left = await self.keys.device_list_delta(
                        p.requester.user_id, p.since.position, p.upto.position
                    )
                e2ee["device_lists"] = {"changed": changed, "left": left}
            found["e2ee"] = e2ee
        if config.account_data.enabled:
            found["account_data"] = await self._account_data(p)
        if config.receipts.enabled:
            found["receipts"] = {"rooms": await self._receipts(p)}
        if config.typing.enabled:
            found["typing"] = {"rooms": self._typing(p)}
        return found

    async def _to_device(self, p: ExtensionPass) -> dict[str, Any]:
        """The device's messages after the extension's ``since`` (those up to it are
        acknowledged): the inbox is read when something arrived after ``since``, or when
        messages handed out before wait to be acknowledged."""
        device = (p.requester.user_id, p.requester.device_id)
        since = p.config.to_device_since
        if (
            since is not None
            and device not in self._unacked
            and not self.db.changes.to_device.changed_since(device, since)
        ):
            return {"next_batch": str(max(since, p.upto.position)), "events": []}
        events, next_batch = await self.keys.to_device_page(
            p.requester, since, p.upto.position, p.config.to_device_limit
        )
        if events:
            self._unacked.add(device)
        else:
            self._unacked.discard(device)
        return {"next_batch": str(next_batch), "events": events}

    def _device_lists_may_have_changed(self, p: ExtensionPass, since: int) -> bool:
        """As /sync asks: someone's devices changed, or a membership of the user or of a
        room they are in."""
        changes = self.db.changes
        joined = [e.room_id for e in p.interested.entries.values() if e.kind == "join"]
        return (
            changes.device_lists.anything_since(since)
            or changes.memberships.changed_since(p.requester.user_id, since)
            or changes.room_state.any_changed_since(joined, since)
        )

    def _rooms(self, p: ExtensionPass, scoped: ScopedExtension) -> list[str]:
        """The rooms an extension covers (Synapse's ``find_relevant_room_ids_for_extension``):
        those of the named lists' ranges (``*``: every list's), and the named rooms among
        this response's (``*``: all of them, subscribed to or in a list's range)."""
        lists = p.interested.list_rooms
        rooms: list[str] = []
        for name in lists if WILDCARD in scoped.lists else scoped.lists:
            rooms += lists.get(name, [])
        actual = p.interested.rooms
        rooms += (
            list(actual) if WILDCARD in scoped.rooms else [r for r in scoped.rooms if r in actual]
        )
        return list(dict.fromkeys(rooms))

    async def _account_data(self, p: ExtensionPass) -> dict[str, Any]:
        """Global account data (all of it on a connection's first response, with the push
        rules), and each covered room's: all of it for a room new to the connection's
        account data, what changed since it was last sent otherwise."""
        user_id = p.requester.user_id
        since = p.since.position if p.since else None
        relevant = self._rooms(p, p.config.account_data)
        groups = _by_since(relevant, p.previous.account_data, since, set())
        if since is not None:
            groups.setdefault(since, [])  # the global account data
        found: dict[str, list[dict[str, Any]]] = {r: [] for r in groups.get(None, [])}
        global_events: list[dict[str, Any]] = []
        tracker = self.db.changes.account_data
        for after, room_ids in groups.items():
            if after is not None and not tracker.changed_since(user_id, after):
                continue
            wanted = set(room_ids)
            rows = await self._account_data_since(user_id, after, p.upto.position)
            for room_id, data_type, content in rows:
                event = {"type": data_type, "content": content}
                if room_id == "" and after == since:
                    global_events.append(event)
                elif room_id in wanted:
                    found.setdefault(room_id, []).append(event)
        if since is None and self.push_rules is not None:
            holder: dict[str, Any] = {"account_data": {"events": global_events}}
            await self.push_rules(p.requester, None, p.upto.position, holder, [])
        sent = [
            r for after, rooms in groups.items() if after is None or after != since for r in rooms
        ]
        record_sent(p.state.account_data, sent)
        if since is not None and tracker.changed_since(user_id, since):
            # Rooms whose account data changed out of this response's scope.
            async with self.db.read() as conn:
                rows = await userdata_store.account_data_since(
                    conn, user_id, since, p.upto.position
                )
            record_unsent(p.state.account_data, {r for r, _, _ in rows} - set(relevant), since)
        return {"global": global_events, "rooms": found}

    async def _account_data_since(
        self, user_id: str, after: int | None, upto: int
    ) -> list[tuple[str, str, Any]]:
        if after is None:
            known = self._all_account_data.get(user_id)
            if (
                known is not None
                and known[0] <= upto
                and not self.db.changes.account_data.changed_since(user_id, known[0])
            ):
                return known[1]
            # Valid while nothing of theirs is written past ``upto`` (all up to it is in).
        async with self.db.read() as conn:
            rows = await userdata_store.account_data_since(conn, user_id, after, upto)
        if after is None:
            if len(self._all_account_data) >= _CACHED_USERS:
                self._all_account_data.clear()
            self._all_account_data[user_id] = (upto, rows)
        return rows

    async def _receipts(self, p: ExtensionPass) -> dict[str, Any]:
        """Each covered room's receipts: for a room new to the connection (or sent from
        the start), the user's own and those on its timeline events; else those since it
        was last sent."""
        user_id = p.requester.user_id
        since = p.since.position if p.since else None
        relevant = self._rooms(p, p.config.receipts)
        groups = _by_since(relevant, p.previous.receipts, since, set(p.initial_rooms))
        initial = groups.pop(None, [])
        found = await counts.receipts_after(
            self.db,
            [(r, after) for after, rooms in groups.items() for r in rooms],
            p.upto.position,
        )
        if initial:
            if p.own_receipts is not None:
                own = {r: p.own_receipts[r] for r in initial if r in p.own_receipts}
            else:
                async with self.db.read() as conn:
                    own = await userdata_store.receipts_of_user(
                        conn, user_id, initial, ["m.read", "m.read.private"]
                    )
            on_timeline = await self.timeline_receipts.of(
                {r: p.initial_rooms.get(r, []) for r in initial}
            )
            for room_id, receipts in own.items():
                found.setdefault(room_id, []).extend(receipts)
            for receipt in on_timeline:
                if receipt.room_id in initial and receipt.user_id != user_id:
                    found.setdefault(receipt.room_id, []).append(receipt)
        result: dict[str, Any] = {}
        for room_id, receipts in found.items():
            event = receipts_event(receipts, user_id)
            if event is not None:
                result[room_id] = event
        record_sent(
            p.state.receipts,
            [r for after, rooms in groups.items() if after != since for r in rooms],
        )
        record_sent(p.state.receipts, initial)
        if since is not None:
            changes = self.db.changes.receipts
            record_unsent(
                p.state.receipts,
                (
                    r
                    for r, status in p.previous.receipts.items()
                    if status is None and r not in relevant and changes.changed_since(r, since)
                ),
                since,
            )
        return result

    def _typing(self, p: ExtensionPass) -> dict[str, Any]:
        """Who types in each covered room whose typing changed since the connection's
        token (since the node started, on its first response)."""
        serial = p.since.typing if p.since else 0
        return {
            room_id: {
                "type": "m.typing",
                "content": {"user_ids": self.typing.typing_users(room_id)},
            }
            for room_id in self._rooms(p, p.config.typing)
            if self.typing.changed_since(room_id, serial)
        }


def _by_since(
    room_ids: list[str], statuses: RoomStatuses, since: int | None, initial: set[str]
) -> dict[int | None, list[str]]:
    """Rooms by where the extension reads them from: None (from the start: never sent,
    or in ``initial``), the connection's ``since`` (live), or where it last sent them."""
    groups: dict[int | None, list[str]] = {}
    for room_id in room_ids:
        after: int | None = None
        if since is not None and room_id not in initial and room_id in statuses:
            status = statuses[room_id]
            after = since if status is None else status
        groups.setdefault(after, []).append(room_id)
    return groups
