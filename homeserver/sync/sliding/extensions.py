"""The extensions of a sliding sync response (Synapse's ``extensions`` handler): to-device
messages, e2ee (device lists, one-time key counts), account data, receipts and typing.

Each reuses what /sync reads: the keys service (through :mod:`.ports`), the account data
and receipts as :mod:`homeserver.sync.counts` reads them, the typing service, and the push
rules' sync extension for the default rules on a connection's first response.  account
data, receipts and typing cover the rooms of the lists and subscriptions they name
(``*``: all of them) that this response is about.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from homeserver.accounts.requester import Requester
from homeserver.storage import userdata as userdata_store
from homeserver.storage.database import Database
from homeserver.sync import counts
from homeserver.sync.joined import receipts_event
from homeserver.sync.params import SyncToken
from homeserver.sync.ports import SyncExtension
from homeserver.sync.sliding.ports import DeviceKeys
from homeserver.sync.sliding.request import WILDCARD, ExtensionsConfig, ScopedExtension
from homeserver.sync.sliding.room_list import InterestedRooms
from homeserver.sync.typing import TypingService


@dataclass(frozen=True)
class ExtensionPass:
    requester: Requester
    config: ExtensionsConfig
    since: SyncToken | None
    upto: SyncToken
    interested: InterestedRooms
    #: Rooms sent for the first time in this response.
    initial_rooms: set[str]
    subscriptions: Sequence[str]


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

    async def response(self, p: ExtensionPass) -> dict[str, Any]:
        found: dict[str, Any] = {}
        config = p.config
        if config.to_device:
            events, next_batch = await self.keys.to_device_page(
                p.requester, config.to_device_since, p.upto.position, config.to_device_limit
            )
            found["to_device"] = {"next_batch": str(next_batch), "events": events}
        if config.e2ee:
            one_time, fallback = await self.keys.one_time_key_counts(p.requester)
            e2ee: dict[str, Any] = {
                "device_one_time_keys_count": one_time,
                "device_unused_fallback_key_types": fallback,
            }
            if p.since is not None:
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

    def _rooms(self, p: ExtensionPass, scoped: ScopedExtension) -> list[str]:
        """The rooms an extension covers in this response."""
        rooms: list[str] = []
        lists = p.interested.list_rooms
        for name in lists if WILDCARD in scoped.lists else scoped.lists:
            rooms += lists.get(name, [])
        subscribed = [r for r in p.subscriptions if r in p.interested.rooms]
        rooms += (
            subscribed if WILDCARD in scoped.rooms else [r for r in scoped.rooms if r in subscribed]
        )
        return list(dict.fromkeys(rooms))

    async def _account_data(self, p: ExtensionPass) -> dict[str, Any]:
        user_id = p.requester.user_id
        since = p.since.position if p.since else None
        rooms = set(self._rooms(p, p.config.account_data))
        changed = since is None or self.db.changes.account_data.changed_since(user_id, since)
        found: dict[str, list[dict[str, Any]]] = {}
        if changed:
            async with self.db.read() as conn:
                rows = await userdata_store.account_data_since(
                    conn, user_id, since, p.upto.position
                )
            for room_id, data_type, content in rows:
                if room_id == "" or room_id in rooms:
                    found.setdefault(room_id, []).append({"type": data_type, "content": content})
        global_events = found.pop("", [])
        if since is None and self.push_rules is not None:
            holder: dict[str, Any] = {"account_data": {"events": global_events}}
            await self.push_rules(p.requester, None, p.upto.position, holder, [])
        return {"global": global_events, "rooms": found}

    async def _receipts(self, p: ExtensionPass) -> dict[str, Any]:
        user_id = p.requester.user_id
        since = p.since.position if p.since else None
        rooms = self._rooms(p, p.config.receipts)
        found = await counts.receipts_after(
            self.db,
            [(r, None if r in p.initial_rooms else since) for r in rooms],
            p.upto.position,
        )
        result: dict[str, Any] = {}
        for room_id, receipts in found.items():
            event = receipts_event(receipts, user_id)
            if event is not None:
                result[room_id] = event
        return result

    def _typing(self, p: ExtensionPass) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for room_id in self._rooms(p, p.config.typing):
            users = self.typing.typing_users(room_id)
            if p.since is None or room_id in p.initial_rooms:
                if not users:
                    continue
            elif not self.typing.changed_since(room_id, p.since.typing):
                continue
            result[room_id] = {"type": "m.typing", "content": {"user_ids": users}}
        return result
