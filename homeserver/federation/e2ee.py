"""End-to-end encryption across servers: device lists, keys and to-device messages.

Outgoing: a committed change of a local user's devices or keys (at a stream position) is
sent as ``m.device_list_update`` EDUs (one per device, ``stream_id`` the change's position,
``prev_id`` the user's previous change) and, for cross-signing keys, ``m.signing_key_update``,
to every server sharing a room with the user.  To-device messages for remote users become
``m.direct_to_device`` EDUs.  Remote key queries and claims go to the users' servers.

Device display names are not sent to other servers (they often name their owner; Synapse's
default too).

Incoming: device list updates of remote users sharing a room with a local user are applied
to a cache (``remote_device_lists``) when their ``prev_id`` follows the cached stream ID,
otherwise the whole list is fetched again (``/user/devices``); either way the user is
marked changed, so local users see them in ``device_lists.changed``.  The answers to
``/user/devices`` and ``/user/keys/*`` cover local users only.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import secrets
import weakref
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any, TypeGuard, TypeVar

from sqlalchemy import func, select

from federation.client import FederationClient, FederationClientError, RemoteError, federation_path
from federation.errors import MatrixError
from federation.identifiers import domain_of
from federation.sender import TransactionSender
from homeserver.accounts.service import Requester
from homeserver.common.clock import Clock
from homeserver.e2ee import validate
from homeserver.e2ee.service import KeysService
from homeserver.rooms.cache import RoomCache
from homeserver.storage import keys as key_store
from homeserver.storage import remote_cache
from homeserver.storage.events import StoredEvent
from homeserver.storage.schema import device_list_changes

log = logging.getLogger(__name__)

#: At most this many devices of one remote user are cached.
MAX_REMOTE_DEVICES = 1000
#: Remembered (origin, message_id) of incoming to-device EDUs, against replays.
MAX_SEEN_MESSAGE_IDS = 10_000
RESYNC_TIMEOUT_S = 10.0
#: The node answers /user/keys/* for users of this server only; there are limits too.
MAX_FEDERATION_QUERY_USERS = 1000
MAX_FEDERATION_QUERY_DEVICES = 10_000
#: Servers asked at once for one client's /keys/query or /keys/claim.
MAX_PARALLEL_SERVERS = 20

EduHandler = Callable[[str, dict[str, Any]], Awaitable[None]]
_T = TypeVar("_T")
_NOBODY = Requester("", "")


def _invalid(message: str) -> MatrixError:
    return MatrixError(400, "M_INVALID_PARAM", message)


def _failure(error: Exception) -> dict[str, Any]:
    if isinstance(error, RemoteError):
        return {"status": error.status, "message": error.message}
    return {"status": 503, "message": f"Cannot reach the server: {error}"}


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _valid_device_keys(keys: Any, user_id: str, device_id: str) -> bool:
    return (
        isinstance(keys, dict)
        and keys.get("user_id") == user_id
        and keys.get("device_id") == device_id
        and isinstance(keys.get("keys"), dict)
    )


def _valid_cross_signing(key: Any, user_id: str) -> bool:
    return (
        isinstance(key, dict)
        and key.get("user_id") == user_id
        and isinstance(key.get("keys"), dict)
    )


class FederatedKeys:
    """Implements KeysService.remote, the federation handler's ``keys_handler`` and the
    E2EE EDU handlers."""

    def __init__(
        self,
        keys: KeysService,
        client: FederationClient,
        sender: TransactionSender,
        clock: Clock,
    ) -> None:
        self.keys = keys
        self.db = keys.db
        self.client = client
        self.sender = sender
        self.clock = clock
        self.server_name = keys.server_name
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
        return self.keys.accounts.is_local(user_id)

    async def _servers_sharing_rooms(self, user_id: str) -> set[str]:
        async with self.db.read() as conn:
            users = await key_store.users_sharing_rooms(conn, user_id)
        return {domain_of(u) for u in users} - {self.server_name}

    # ------------------------------------------------------------- outgoing

    async def keys_changed(
        self,
        user_id: str,
        stream_id: int,
        devices: list[str],
        deleted: list[str],
        cross_signing: bool,
    ) -> None:
        destinations = await self._servers_sharing_rooms(user_id)
        if not destinations:
            return
        async with self.db.read() as conn:
            prev = (
                await conn.execute(
                    select(func.max(device_list_changes.c.stream_id)).where(
                        device_list_changes.c.user_id == user_id,
                        device_list_changes.c.stream_id < stream_id,
                    )
                )
            ).scalar()
            wanted = list(dict.fromkeys([*devices, *deleted]))
            found = {
                d.device_id: d
                for d in await key_store.devices_with_keys(conn, user_id, wanted)
                if not d.device_id.startswith(key_store.CROSS_SIGNING_PREFIX)
            }
            cross = await key_store.get_cross_signing_keys(conn, user_id)
        prev_id = [int(prev)] if prev is not None else []
        for device_id in wanted:
            device = found.get(device_id)
            if device is None and device_id not in deleted:
                continue  # a signed cross-signing key, not a device
            content: dict[str, Any] = {
                "user_id": user_id,
                "device_id": device_id,
                "stream_id": stream_id,
                "prev_id": prev_id,
                "deleted": device is None,
            }
            if device is not None and device.keys is not None:
                content["keys"] = device.keys
            await self.sender.send_edu("m.device_list_update", content, destinations)
        if cross_signing and ("master" in cross or "self_signing" in cross):
            content = {"user_id": user_id}
            for key_type in ("master", "self_signing"):
                if key_type in cross:
                    content[f"{key_type}_key"] = _public_cross_signing(cross[key_type])
            await self.sender.send_edu("m.signing_key_update", content, destinations)

    async def send_to_device(
        self, sender: str, event_type: str, messages: dict[str, dict[str, Any]]
    ) -> None:
        by_server: dict[str, dict[str, dict[str, Any]]] = {}
        for user_id, per_device in messages.items():
            by_server.setdefault(domain_of(user_id), {})[user_id] = per_device
        for server, grouped in sorted(by_server.items()):
            content = {
                "sender": sender,
                "type": event_type,
                "message_id": secrets.token_urlsafe(16),
                "messages": grouped,
            }
            await self.sender.send_edu("m.direct_to_device", content, [server])

    async def query(self, wanted: dict[str, list[str]], timeout_s: float) -> dict[str, Any]:
        result: dict[str, Any] = {
            "device_keys": {},
            "master_keys": {},
            "self_signing_keys": {},
            "failures": {},
        }
        to_ask: dict[str, dict[str, list[str]]] = {}
        for user_id, device_ids in wanted.items():
            cached = await self._cached_if_tracked(user_id)
            if cached is None:
                to_ask.setdefault(domain_of(user_id), {})[user_id] = device_ids
                continue
            devices = cached.data.get("devices", {})
            result["device_keys"][user_id] = {
                device_id: _with_display_name(entry)
                for device_id, entry in devices.items()
                if entry.get("keys") is not None and (not device_ids or device_id in device_ids)
            }
            for key_type in ("master", "self_signing"):
                if f"{key_type}_key" in cached.data:
                    result[f"{key_type}_keys"][user_id] = cached.data[f"{key_type}_key"]

        async def ask(server: str, users: dict[str, list[str]]) -> None:
            try:
                answer = await self.client.request(
                    server,
                    "POST",
                    federation_path("v1", "user/keys/query"),
                    body={"device_keys": users},
                    timeout_s=timeout_s,
                )
            except FederationClientError as e:
                log.info("key query to %s failed: %s", server, e)
                result["failures"][server] = _failure(e)
                return
            if not isinstance(answer, dict):
                return
            answered = answer.get("device_keys")
            for user_id in users:
                per_user = answered.get(user_id) if isinstance(answered, dict) else None
                if isinstance(per_user, dict):
                    result["device_keys"][user_id] = {
                        d: k for d, k in per_user.items() if _valid_device_keys(k, user_id, d)
                    }
                for key_type in ("master", "self_signing"):
                    section = answer.get(f"{key_type}_keys")
                    key = section.get(user_id) if isinstance(section, dict) else None
                    if _valid_cross_signing(key, user_id):
                        result[f"{key_type}_keys"][user_id] = key

        await _ask_all(to_ask, ask, timeout_s, result["failures"])
        return result

    async def claim(self, wanted: dict[str, dict[str, str]], timeout_s: float) -> dict[str, Any]:
        result: dict[str, Any] = {"one_time_keys": {}, "failures": {}}
        by_server: dict[str, dict[str, dict[str, str]]] = {}
        for user_id, per_device in wanted.items():
            by_server.setdefault(domain_of(user_id), {})[user_id] = per_device

        async def ask(server: str, users: dict[str, dict[str, str]]) -> None:
            try:
                answer = await self.client.request(
                    server,
                    "POST",
                    federation_path("v1", "user/keys/claim"),
                    body={"one_time_keys": users},
                    timeout_s=timeout_s,
                )
            except FederationClientError as e:
                log.info("key claim to %s failed: %s", server, e)
                result["failures"][server] = _failure(e)
                return
            claimed = answer.get("one_time_keys") if isinstance(answer, dict) else None
            if not isinstance(claimed, dict):
                return
            for user_id, per_device in users.items():
                got = claimed.get(user_id)
                if not isinstance(got, dict):
                    continue
                kept = {
                    d: k
                    for d, k in got.items()
                    if d in per_device and isinstance(k, dict) and len(k) == 1
                }
                if kept:
                    result["one_time_keys"][user_id] = kept

        await _ask_all(by_server, ask, timeout_s, result["failures"])
        return result

    async def _cached_if_tracked(self, user_id: str) -> remote_cache.RemoteDeviceList | None:
        """The cached device list, if the user still shares a room with a local user (so
        updates keep arriving)."""
        if not await self._tracked(user_id):
            return None
        async with self.db.read() as conn:
            return await remote_cache.get_device_list(conn, user_id)

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
            or not _is_int(stream_id)
            or not isinstance(prev_id, list)
            or not all(_is_int(p) for p in prev_id)
            or not isinstance(deleted, bool)
        ):
            log.info("ignored a malformed m.device_list_update from %s", origin)
            return
        keys = content.get("keys")
        if keys is not None and not _valid_device_keys(keys, user_id, device_id):
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
            if _valid_cross_signing(content.get(f"{t}_key"), user_id)
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

    async def _tracked(self, user_id: str) -> bool:
        """Whether a local user shares a room with the remote user."""
        async with self.db.read() as conn:
            sharing = await key_store.users_sharing_rooms(conn, user_id)
        return any(self._is_local(u) for u in sharing)

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
                await key_store.add_device_list_change(conn, user_id, position)
        async with self.db.read() as conn:
            wake = await key_store.users_sharing_rooms(conn, user_id)
        self.keys.notifier.notify({u for u in wake if self._is_local(u)})

    # ------------------------------------------------------------- answers to other servers

    async def federation_user_devices(self, origin: str, user_id: str) -> dict[str, Any]:
        if not validate.is_user_id(user_id) or not self._is_local(user_id):
            raise _invalid("Not a user of this server")
        async with self.db.read() as conn:
            latest = (
                await conn.execute(
                    select(func.max(device_list_changes.c.stream_id)).where(
                        device_list_changes.c.user_id == user_id
                    )
                )
            ).scalar()
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
            "stream_id": int(latest or 0),
            "devices": listed,
        }
        for key_type in ("master", "self_signing"):
            if key_type in cross:
                result[f"{key_type}_key"] = _public_cross_signing(cross[key_type])
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
            raise _invalid(
                f"At most {MAX_FEDERATION_QUERY_USERS} users and "
                f"{MAX_FEDERATION_QUERY_DEVICES} devices at once"
            )
        for user_id in wanted:
            if not validate.is_user_id(user_id) or not self._is_local(user_id):
                raise _invalid(f"{user_id} is not a user of this server")
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


async def _ask_all(
    by_server: dict[str, _T],
    ask: Callable[[str, _T], Awaitable[None]],
    timeout_s: float,
    failures: dict[str, Any],
) -> None:
    """``ask`` every server (a few at a time); those without an answer when ``timeout_s``
    is over are failures."""
    slots = asyncio.Semaphore(MAX_PARALLEL_SERVERS)

    async def one(server: str, wanted: _T) -> None:
        async with slots:
            await ask(server, wanted)

    tasks = {
        server: asyncio.ensure_future(one(server, wanted))
        for server, wanted in sorted(by_server.items())
    }
    if not tasks:
        return
    _done, pending = await asyncio.wait(tasks.values(), timeout=timeout_s)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    for server, task in tasks.items():
        if task in pending:
            failures[server] = {"status": 504, "message": "The server did not answer in time"}
        elif task.exception() is not None:
            log.error("asking %s failed", server, exc_info=task.exception())
            failures[server] = {"status": 503, "message": "Cannot ask the server"}


def _public_cross_signing(envelope: dict[str, Any]) -> dict[str, Any]:
    """A stored cross-signing key without the signatures only its signer may see."""
    return dict(copy.deepcopy(envelope["key"]))


def _with_display_name(entry: dict[str, Any]) -> dict[str, Any]:
    keys = dict(copy.deepcopy(entry["keys"]))
    name = entry.get("device_display_name")
    keys["unsigned"] = {"device_display_name": name} if isinstance(name, str) else {}
    return keys


def _parse_user_devices(answer: Any, user_id: str) -> tuple[int, dict[str, Any]] | None:
    """(stream_id, cache data) from a /user/devices answer, or None when it is unusable."""
    if not isinstance(answer, dict) or answer.get("user_id") != user_id:
        return None
    stream_id, listed = answer.get("stream_id"), answer.get("devices")
    if not _is_int(stream_id) or not isinstance(listed, list):
        return None
    devices: dict[str, Any] = {}
    for entry in listed[:MAX_REMOTE_DEVICES]:
        if not isinstance(entry, dict) or not isinstance(entry.get("device_id"), str):
            continue
        device_id = entry["device_id"]
        keys = entry.get("keys")
        item: dict[str, Any] = {
            "keys": keys if _valid_device_keys(keys, user_id, device_id) else None
        }
        if isinstance(entry.get("device_display_name"), str):
            item["device_display_name"] = entry["device_display_name"]
        devices[device_id] = item
    data: dict[str, Any] = {"devices": devices, "prev_id": None}
    for key_type in ("master", "self_signing"):
        key = answer.get(f"{key_type}_key")
        if _valid_cross_signing(key, user_id):
            data[f"{key_type}_key"] = key
    return int(stream_id), data
