"""End-to-end encryption across servers, outgoing: device lists, keys and to-device messages.

A committed change of a local user's devices or keys (at a stream position) is sent as
``m.device_list_update`` EDUs (one per device, ``stream_id`` the change's position,
``prev_id`` the user's previous change) and, for cross-signing keys, ``m.signing_key_update``,
to every server sharing a room with the user.  To-device messages for remote users become
``m.direct_to_device`` EDUs.  Remote key queries and claims go to the users' servers
(answered from the cache of a remote user's device list while it is kept up to date).

Device display names are not sent to other servers (they often name their owner; Synapse's
default too).

What other servers send (EDUs, key queries) is handled by ``e2ee_inbound.py``.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any, TypeGuard, TypeVar

from federation.client import FederationClient, FederationClientError, RemoteError, federation_path
from federation.identifiers import domain_of
from federation.sender import TransactionSender
from homeserver.federation.ports import LocalUsers
from homeserver.storage import device_lists as device_list_store
from homeserver.storage import keys as key_store
from homeserver.storage import remote_cache
from homeserver.storage.database import Database

log = logging.getLogger(__name__)

#: Servers asked at once for one client's /keys/query or /keys/claim.
MAX_PARALLEL_SERVERS = 20

_T = TypeVar("_T")


def _failure(error: Exception) -> dict[str, Any]:
    if isinstance(error, RemoteError):
        return {"status": error.status, "message": error.message}
    return {"status": 503, "message": f"Cannot reach the server: {error}"}


def is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def valid_device_keys(keys: Any, user_id: str, device_id: str) -> bool:
    return (
        isinstance(keys, dict)
        and keys.get("user_id") == user_id
        and keys.get("device_id") == device_id
        and isinstance(keys.get("keys"), dict)
    )


def valid_cross_signing(key: Any, user_id: str) -> bool:
    return (
        isinstance(key, dict)
        and key.get("user_id") == user_id
        and isinstance(key.get("keys"), dict)
    )


async def tracked(db: Database, users: LocalUsers, user_id: str) -> bool:
    """Whether a local user shares a room with the remote user (so that their device list
    updates keep arriving)."""
    async with db.read() as conn:
        sharing = await device_list_store.users_sharing_rooms(conn, user_id)
    return any(users.is_local(u) for u in sharing)


class FederatedKeys:
    """Other servers' users' keys and devices, and telling other servers about local
    users' (implements homeserver.e2ee.service.RemoteKeys)."""

    def __init__(
        self,
        db: Database,
        client: FederationClient,
        sender: TransactionSender,
        server_name: str,
        users: LocalUsers,
    ) -> None:
        self.db = db
        self.client = client
        self.sender = sender
        self.server_name = server_name
        self.users = users

    async def _servers_sharing_rooms(self, user_id: str) -> set[str]:
        async with self.db.read() as conn:
            users = await device_list_store.users_sharing_rooms(conn, user_id)
        return {domain_of(u) for u in users} - {self.server_name}

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
            prev = await device_list_store.latest_device_list_change(
                conn, user_id, before=stream_id
            )
            wanted = list(dict.fromkeys([*devices, *deleted]))
            found = {
                d.device_id: d
                for d in await key_store.devices_with_keys(conn, user_id, wanted)
                if not d.device_id.startswith(key_store.CROSS_SIGNING_PREFIX)
            }
            cross = await key_store.get_cross_signing_keys(conn, user_id)
        prev_id = [prev] if prev is not None else []
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
                    content[f"{key_type}_key"] = public_cross_signing(cross[key_type])
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
                device_id: with_display_name(entry)
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
                        d: k for d, k in per_user.items() if valid_device_keys(k, user_id, d)
                    }
                for key_type in ("master", "self_signing"):
                    section = answer.get(f"{key_type}_keys")
                    key = section.get(user_id) if isinstance(section, dict) else None
                    if valid_cross_signing(key, user_id):
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
        if not await tracked(self.db, self.users, user_id):
            return None
        async with self.db.read() as conn:
            return await remote_cache.get_device_list(conn, user_id)


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


def public_cross_signing(envelope: dict[str, Any]) -> dict[str, Any]:
    """A stored cross-signing key without the signatures only its signer may see."""
    return dict(copy.deepcopy(envelope["key"]))


def with_display_name(entry: dict[str, Any]) -> dict[str, Any]:
    keys = dict(copy.deepcopy(entry["keys"]))
    name = entry.get("device_display_name")
    keys["unsigned"] = {"device_display_name": name} if isinstance(name, str) else {}
    return keys
