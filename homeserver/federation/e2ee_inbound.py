"""End-to-end encryption across servers, incoming: what other servers send and ask.

Device list updates of remote users sharing a room with a local user are applied to a cache
(``remote_device_lists``) when their ``prev_id`` follows the cached stream ID, otherwise the
whole list is fetched again (``/user/devices``); either way the user is marked changed, so
local users see them in ``device_lists.changed``.  When no local user shares a room with a
remote user any more, their cached list is dropped.  To-device messages for local users are
delivered.  The answers to ``/user/devices`` and ``/user/keys/*`` cover local users only.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import weakref
from collections import OrderedDict
from typing import Any

from federation.client import FederationClient, FederationClientError, federation_path
from federation.errors import MatrixError
from federation.identifiers import domain_of
from homeserver.accounts.service import Requester
from homeserver.common.clock import Clock
from homeserver.common.errors import invalid_param
from homeserver.common.notifier import Notifier
from homeserver.e2ee import validate
from homeserver.federation.e2ee import (
    is_int,
    public_cross_signing,
    tracked,
    valid_cross_signing,
    valid_device_keys,
)
from homeserver.federation.ports import EduHandler, LocalKeys, LocalUsers
from homeserver.rooms.cache import RoomCache
from homeserver.storage import device_lists as device_list_store
from homeserver.storage import keys as key_store
from homeserver.storage import remote_cache
from homeserver.storage.database import Database
from homeserver.storage.events import StoredEvent

log = logging.getLogger(__name__)

#: At most this many devices of one remote user are cached.
MAX_REMOTE_DEVICES = 1000
#: Remembered (origin, message_id) of incoming to-device EDUs, against replays.
MAX_SEEN_MESSAGE_IDS = 10_000
RESYNC_TIMEOUT_S = 10.0
#: The node answers /user/keys/* for users of this server only; there are limits too.
MAX_FEDERATION_QUERY_USERS = 1000
MAX_FEDERATION_QUERY_DEVICES = 10_000

_NOBODY = Requester("", "")


class KeysReceiver:
    """E2EE EDUs from other servers, their key queries and claims (the federation
    handler's ``keys``), and a RoomService listener dropping device lists no longer kept
    up to date."""

    def __init__(
        self,
        keys: LocalKeys,
        db: Database,
        client: FederationClient,
        clock: Clock,
        notifier: Notifier,
        users: LocalUsers,
    ) -> None:
        self.keys = keys
        self.db = db
        self.client = client
        self.clock = clock
        self.notifier = notifier
        self.users = users
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self._seen_messages: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()

    def edu_handlers(self) -> dict[str, EduHandler]:
        return {
            "m.device_list_update": self.on_device_list_update,
            "m.signing_key_update": self.on_signing_key_update,
            "m.direct_to_device": self.on_direct_to_device,
        }

    def _lock(self, user_id: str) -> asyncio.Lock:
        lock = self._locks.get(user_id)
        if lock is None:
            lock = self._locks[user_id] = asyncio.Lock()
        return lock

    def _is_local(self, user_id: str) -> bool:
        return self.users.is_local(user_id)

    async def _tracked(self, user_id: str) -> bool:
        return await tracked(self.db, self.users, user_id)

    # ------------------------------------------------------------- losing track

    def on_room_event(self, room: RoomCache, event: StoredEvent) -> None:
        """RoomService listener: when a membership ends, the remote users no local user
        shares a room with any more stop sending us updates, so their cached device lists
        are dropped (a cache kept would be stale if they are tracked again later)."""
        if event.type != "m.room.member" or event.outlier or event.rejected_reason:
            return
        member = event.state_key
        if not member or event.pdu.get("content", {}).get("membership") == "join":
            return
        if self._is_local(member):
            candidates = {
                u for u, m in room.members.items() if m == "join" and not self._is_local(u)
            }
        else:
            candidates = {member}
        if candidates:
            task = asyncio.get_running_loop().create_task(self._forget_untracked(candidates))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _forget_untracked(self, user_ids: set[str]) -> None:
        try:
            for user_id in sorted(user_ids):
                async with self._lock(user_id):
                    if await self._tracked(user_id):
                        continue
                    async with self.db.write() as conn:
                        await remote_cache.delete_device_list(conn, user_id)
        except Exception:
            log.exception("cannot drop cached device lists")

    # ------------------------------------------------------------- incoming EDUs

    async def on_device_list_update(self, origin: str, content: dict[str, Any]) -> None:
        user_id, device_id = content.get("user_id"), content.get("device_id")
        stream_id, prev_id = content.get("stream_id"), content.get("prev_id", [])
        deleted = content.get("deleted", False)
        if (
            not isinstance(user_id, str)
            or not validate.is_user_id(user_id)
            or domain_of(user_id) != origin
            or not isinstance(device_id, str)
            or not is_int(stream_id)
            or not isinstance(prev_id, list)
            or not all(is_int(p) for p in prev_id)
            or not isinstance(deleted, bool)
        ):
            log.info("ignored a malformed m.device_list_update from %s", origin)
            return
        keys = content.get("keys")
        if keys is not None and not valid_device_keys(keys, user_id, device_id):
            log.info("ignored m.device_list_update from %s with foreign keys", origin)
            return
        name = content.get("device_display_name")
        if not await self._tracked(user_id):
            return
        async with self._lock(user_id):
            async with self.db.read() as conn:
                cached = await remote_cache.get_device_list(conn, user_id)
            if cached is not None and stream_id < cached.stream_id:
                return  # already applied (or superseded by a resync)
            follows = cached is not None and (
                prev_id == [cached.stream_id]
                or (stream_id == cached.stream_id and prev_id == cached.data.get("prev_id"))
            )
            if cached is not None and follows:
                data = copy.deepcopy(cached.data)
                devices = data.setdefault("devices", {})
                if deleted:
                    devices.pop(device_id, None)
                elif len(devices) < MAX_REMOTE_DEVICES or device_id in devices:
                    entry: dict[str, Any] = {"keys": keys}
                    if isinstance(name, str):
                        entry["device_display_name"] = name
                    devices[device_id] = entry
                data["prev_id"] = prev_id
                async with self.db.write() as conn:
                    await remote_cache.set_device_list(
                        conn, user_id, stream_id, data, self.clock.now_ms()
                    )
            elif cached is None or stream_id > cached.stream_id:
                await self._resync(user_id)
        await self._mark_changed(user_id)

    async def on_signing_key_update(self, origin: str, content: dict[str, Any]) -> None:
        user_id = content.get("user_id")
        if not isinstance(user_id, str) or domain_of(user_id) != origin:
            return
        updates = {
            f"{t}_key": content[f"{t}_key"]
            for t in ("master", "self_signing")
            if valid_cross_signing(content.get(f"{t}_key"), user_id)
        }
        if not updates or not await self._tracked(user_id):
            return
        async with self._lock(user_id):
            async with self.db.read() as conn:
                cached = await remote_cache.get_device_list(conn, user_id)
            if cached is not None:
                data = {**cached.data, **updates}
                async with self.db.write() as conn:
                    await remote_cache.set_device_list(
                        conn, user_id, cached.stream_id, data, self.clock.now_ms()
                    )
        await self._mark_changed(user_id)

    async def on_direct_to_device(self, origin: str, content: dict[str, Any]) -> None:
        sender, event_type = content.get("sender"), content.get("type")
        message_id, messages = content.get("message_id"), content.get("messages")
        if (
            not isinstance(sender, str)
            or not validate.is_user_id(sender)
            or domain_of(sender) != origin
            or not isinstance(event_type, str)
            or not event_type
            or not isinstance(message_id, str)
            or not isinstance(messages, dict)
        ):
            log.info("ignored a malformed m.direct_to_device from %s", origin)
            return
        key = (origin, message_id)
        if key in self._seen_messages:
            return
        self._seen_messages[key] = None
        while len(self._seen_messages) > MAX_SEEN_MESSAGE_IDS:
            self._seen_messages.popitem(last=False)
        local = {
            user_id: {d: c for d, c in per_device.items() if isinstance(c, dict)}
            for user_id, per_device in messages.items()
            if isinstance(user_id, str)
            and validate.is_user_id(user_id)
            and self._is_local(user_id)
            and isinstance(per_device, dict)
        }
        if local:
            await self.keys.deliver(sender, event_type, local)

    async def _resync(self, user_id: str) -> None:
        """Fetch the user's whole device list from their server and cache it (or forget
        the cache when that fails, so that queries ask the server)."""
        log.debug("fetching the whole device list of %s", user_id)
        data: dict[str, Any] | None = None
        stream_id = 0
        try:
            answer = await self.client.request(
                domain_of(user_id),
                "GET",
                federation_path("v1", "user/devices", user_id),
                timeout_s=RESYNC_TIMEOUT_S,
            )
            parsed = _parse_user_devices(answer, user_id)
            if parsed is not None:
                stream_id, data = parsed
        except FederationClientError as e:
            log.info("device list resync of %s failed: %s", user_id, e)
        async with self.db.write() as conn:
            if data is None:
                await remote_cache.delete_device_list(conn, user_id)
            else:
                await remote_cache.set_device_list(
                    conn, user_id, stream_id, data, self.clock.now_ms()
                )

    async def _mark_changed(self, user_id: str) -> None:
        with self.db.stream.allocate() as position:
            async with self.db.write() as conn:
                await device_list_store.add_device_list_change(conn, user_id, position)
        async with self.db.read() as conn:
            wake = await device_list_store.users_sharing_rooms(conn, user_id)
        self.notifier.notify({u for u in wake if self._is_local(u)})

    async def federation_user_devices(self, origin: str, user_id: str) -> dict[str, Any]:
        if not validate.is_user_id(user_id) or not self._is_local(user_id):
            raise invalid_param("Not a user of this server")
        async with self.db.read() as conn:
            latest = await device_list_store.latest_device_list_change(conn, user_id)
            devices = await key_store.devices_with_keys(conn, user_id)
            cross = await key_store.get_cross_signing_keys(conn, user_id)
        listed: list[dict[str, Any]] = []
        for device in devices:
            if device.device_id.startswith(key_store.CROSS_SIGNING_PREFIX):
                continue
            entry: dict[str, Any] = {"device_id": device.device_id}
            if device.keys is not None:
                entry["keys"] = device.keys
            listed.append(entry)
        result: dict[str, Any] = {
            "user_id": user_id,
            "stream_id": latest or 0,
            "devices": listed,
        }
        for key_type in ("master", "self_signing"):
            if key_type in cross:
                result[f"{key_type}_key"] = public_cross_signing(cross[key_type])
        return result

    async def federation_user_keys(
        self, origin: str, action: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        section = "device_keys" if action == "query" else "one_time_keys"
        wanted = body.get(section)
        if not isinstance(wanted, dict):
            raise MatrixError(400, "M_BAD_JSON", f"'{section}' must be an object")
        devices = sum(len(v) if isinstance(v, list | dict) else 1 for v in wanted.values())
        if len(wanted) > MAX_FEDERATION_QUERY_USERS or devices > MAX_FEDERATION_QUERY_DEVICES:
            raise invalid_param(
                f"At most {MAX_FEDERATION_QUERY_USERS} users and "
                f"{MAX_FEDERATION_QUERY_DEVICES} devices at once"
            )
        for user_id in wanted:
            if not validate.is_user_id(user_id) or not self._is_local(user_id):
                raise invalid_param(f"{user_id} is not a user of this server")
        if action == "query":
            answer = await self.keys.query(_NOBODY, {"device_keys": wanted})
            for per_user in answer["device_keys"].values():
                for keys in per_user.values():
                    keys["unsigned"] = {}  # device names stay on this server
            return {
                "device_keys": answer["device_keys"],
                "master_keys": answer["master_keys"],
                "self_signing_keys": answer["self_signing_keys"],
            }
        claimed = await self.keys.claim(_NOBODY, {"one_time_keys": wanted})
        return {"one_time_keys": claimed["one_time_keys"]}


def _parse_user_devices(answer: Any, user_id: str) -> tuple[int, dict[str, Any]] | None:
    """(stream_id, cache data) from a /user/devices answer, or None when it is unusable."""
    if not isinstance(answer, dict) or answer.get("user_id") != user_id:
        return None
    stream_id, listed = answer.get("stream_id"), answer.get("devices")
    if not is_int(stream_id) or not isinstance(listed, list):
        return None
    devices: dict[str, Any] = {}
    for entry in listed[:MAX_REMOTE_DEVICES]:
        if not isinstance(entry, dict) or not isinstance(entry.get("device_id"), str):
            continue
        device_id = entry["device_id"]
        keys = entry.get("keys")
        item: dict[str, Any] = {
            "keys": keys if valid_device_keys(keys, user_id, device_id) else None
        }
        if isinstance(entry.get("device_display_name"), str):
            item["device_display_name"] = entry["device_display_name"]
        devices[device_id] = item
    data: dict[str, Any] = {"devices": devices, "prev_id": None}
    for key_type in ("master", "self_signing"):
        key = answer.get(f"{key_type}_key")
        if valid_cross_signing(key, user_id):
            data[f"{key_type}_key"] = key
    return int(stream_id), data
