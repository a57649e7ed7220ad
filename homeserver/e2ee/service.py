"""Devices, device and cross-signing keys, one-time keys, device lists and to-device messages.

Every change of a user's devices or keys is a row in ``device_list_changes`` at a stream
position; users sharing a room with that user (and the user's own devices) see it in
``device_lists.changed`` of their next /sync and are woken up for it.

:class:`KeysService` checks requests, runs the writes and announces what changed; the
work on the data is in the modules beside it: :mod:`.uploads` (``/keys/upload``),
:mod:`.query` (local users' keys for ``/keys/query`` and ``/keys/claim``),
:mod:`.cross_signing`, :mod:`.to_device`, :mod:`.device_lists` and :mod:`.counts`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol

from homeserver.accounts.service import AccountService, Requester
from homeserver.common.clock import Clock
from homeserver.common.errors import MatrixError, bad_json, invalid_param, not_found
from homeserver.common.notifier import Notifier
from homeserver.common.txncache import TransactionCache
from homeserver.e2ee import cross_signing, device_lists, query, to_device, uploads, validate
from homeserver.e2ee.backup import BackupService
from homeserver.e2ee.counts import KeyCounts
from homeserver.storage import accounts as account_store
from homeserver.storage import device_lists as device_list_store
from homeserver.storage import keys as store
from homeserver.storage.database import Database

log = logging.getLogger(__name__)

#: Algorithm whose count clients expect in /sync even when it is zero.
SIGNED_CURVE25519 = "signed_curve25519"


class RemoteKeys(Protocol):
    """Other servers' users' keys and devices (homeserver.federation.e2ee)."""

    async def query(self, wanted: dict[str, list[str]], timeout_s: float) -> dict[str, Any]:
        """Keys of remote users: device_keys, master_keys, self_signing_keys, failures."""
        ...

    async def claim(self, wanted: dict[str, dict[str, str]], timeout_s: float) -> dict[str, Any]:
        """One-time keys of remote users' devices: one_time_keys, failures."""
        ...

    async def send_to_device(
        self, sender: str, event_type: str, messages: dict[str, dict[str, Any]]
    ) -> None: ...

    async def keys_changed(
        self,
        user_id: str,
        stream_id: int,
        devices: list[str],
        deleted: list[str],
        cross_signing: bool,
    ) -> None:
        """A local user's devices or keys changed at ``stream_id`` (committed): tell other
        servers."""
        ...


class KeysService:
    def __init__(
        self,
        db: Database,
        accounts: AccountService,
        notifier: Notifier,
        clock: Clock,
        server_name: str,
        remote: RemoteKeys | None = None,
    ) -> None:
        self.db = db
        self.accounts = accounts
        self.notifier = notifier
        self.clock = clock
        self.server_name = server_name
        self.backup = BackupService(db)
        #: Retried /sendToDevice requests (same path, same device) are delivered once.
        self._txns: TransactionCache[None] = TransactionCache()
        #: Other servers' users (without federation, they are failures).
        self.remote = remote
        #: One-time key counts and unused fallback key types per device, for /sync.
        self.key_counts = KeyCounts(db)
        #: Devices that were handed to-device messages their next /sync acknowledges.
        self._unacked: set[tuple[str, str]] = set()

    # ------------------------------------------------------------- change tracking

    async def _announce(self, user_ids: set[str]) -> None:
        """Wake the users' own devices and everyone sharing a room with them."""
        wake: set[str] = set(user_ids)
        async with self.db.read() as conn:
            for user_id in user_ids:
                wake |= await device_list_store.users_sharing_rooms(conn, user_id)
        self.notifier.notify(wake)

    async def _changed(
        self,
        user_id: str,
        stream_id: int,
        devices: list[str] | None = None,
        deleted: list[str] | None = None,
        cross_signing: bool = False,
    ) -> None:
        """Tell other servers about a committed change of a local user's devices or keys."""
        if self.remote is None:
            return
        try:
            await self.remote.keys_changed(
                user_id, stream_id, devices or [], deleted or [], cross_signing
            )
        except Exception:  # the change is committed; a failed notice must not fail it
            log.exception("cannot send the device list update of %s", user_id)

    async def device_list_delta(
        self, user_id: str, after: int, upto: int
    ) -> tuple[list[str], list[str]]:
        """(changed, left) for ``user_id`` between two stream positions (see
        :func:`homeserver.e2ee.device_lists.device_list_delta`)."""
        return await device_lists.device_list_delta(self.db, user_id, after, upto)

    # ------------------------------------------------------------- upload

    async def upload(self, who: Requester, body: dict[str, Any]) -> dict[str, int]:
        upload = uploads.parse_upload(body, who.user_id, who.device_id)
        announce = False
        with self.db.stream.allocate() as position:
            async with self.db.write() as conn:
                if upload.device_keys is not None and await uploads.store_device_keys(
                    conn, who.user_id, who.device_id, upload.device_keys
                ):
                    await device_list_store.add_device_list_change(conn, who.user_id, position)
                    announce = True
                await uploads.store_one_time_keys(
                    conn, who.user_id, who.device_id, upload.one_time, upload.fallback
                )
                counts = await store.one_time_key_counts(conn, who.user_id, who.device_id)
        self.key_counts.invalidate([(who.user_id, who.device_id)])
        if announce:
            await self._announce({who.user_id})
            await self._changed(who.user_id, position, [who.device_id])
        return {SIGNED_CURVE25519: 0, **counts}

    # ------------------------------------------------------------- query

    async def query(self, who: Requester, body: dict[str, Any]) -> dict[str, Any]:
        wanted = body.get("device_keys")
        if not isinstance(wanted, dict):
            raise bad_json("'device_keys' must be an object of user IDs to device ID lists")
        result: dict[str, Any] = {
            "device_keys": {},
            "failures": {},
            "master_keys": {},
            "self_signing_keys": {},
            "user_signing_keys": {},
        }
        remote: dict[str, list[str]] = {}
        for user_id, device_ids in wanted.items():
            if not validate.is_user_id(user_id):
                raise invalid_param(f"Invalid user ID {user_id!r}")
            if not isinstance(device_ids, list) or not all(isinstance(d, str) for d in device_ids):
                raise bad_json(f"device_keys.{user_id} must be a list of device IDs")
            if self.accounts.is_local(user_id):
                await query.add_local_keys(self.db, result, user_id, device_ids, who.user_id)
            elif self.remote is None:
                result["failures"][user_id.split(":", 1)[1]] = query.no_federation()
            else:
                remote[user_id] = device_ids
        if remote and self.remote is not None:
            answered = await self.remote.query(remote, query.remote_timeout(body))
            for section in ("device_keys", "master_keys", "self_signing_keys", "failures"):
                result[section].update(answered.get(section, {}))
        return result

    # ------------------------------------------------------------- claim

    async def claim(self, who: Requester, body: dict[str, Any]) -> dict[str, Any]:
        wanted = body.get("one_time_keys")
        if not isinstance(wanted, dict):
            raise bad_json("'one_time_keys' must be an object")
        requests: list[tuple[str, str, str]] = []
        failures: dict[str, Any] = {}
        remote: dict[str, dict[str, str]] = {}
        for user_id, per_device in wanted.items():
            if not validate.is_user_id(user_id):
                raise invalid_param(f"Invalid user ID {user_id!r}")
            if not isinstance(per_device, dict):
                raise bad_json(f"one_time_keys.{user_id} must be an object")
            for device_id, algorithm in per_device.items():
                if not isinstance(algorithm, str) or not algorithm:
                    raise bad_json(f"one_time_keys.{user_id}.{device_id} must be an algorithm")
                if self.accounts.is_local(user_id):
                    requests.append((user_id, device_id, algorithm))
                elif self.remote is not None:
                    remote.setdefault(user_id, {})[device_id] = algorithm
                else:
                    failures[user_id.split(":", 1)[1]] = query.no_federation()
        claimed = await query.claim_local(self.db, requests)
        # The devices' owners learn their new counts (and used fallback keys) on /sync.
        self.key_counts.invalidate((u, d) for u, per in claimed.items() for d in per)
        self.notifier.notify(claimed)
        if remote and self.remote is not None:
            answered = await self.remote.claim(remote, query.remote_timeout(body))
            claimed.update(answered.get("one_time_keys", {}))
            failures.update(answered.get("failures", {}))
        return {"one_time_keys": claimed, "failures": failures}

    # ------------------------------------------------------------- cross-signing

    async def cross_signing_needs_uia(self, who: Requester, body: dict[str, Any]) -> bool:
        """Whether this upload must be confirmed with UIA: not for a first master key, nor
        for re-uploading exactly the stored keys."""
        uploaded = cross_signing.uploaded_keys(body, who.user_id)
        async with self.db.read() as conn:
            return await cross_signing.needs_uia(conn, who.user_id, uploaded)

    async def upload_cross_signing(self, who: Requester, body: dict[str, Any]) -> None:
        uploaded = cross_signing.uploaded_keys(body, who.user_id)
        if not uploaded:
            raise MatrixError(400, "M_MISSING_PARAM", "No cross-signing keys given")
        with self.db.stream.allocate() as position:
            async with self.db.write() as conn:
                changed = await cross_signing.store_keys(conn, who.user_id, uploaded)
                if changed:
                    await device_list_store.add_device_list_change(conn, who.user_id, position)
        if changed:
            await self._announce({who.user_id})
            await self._changed(who.user_id, position, cross_signing=True)

    async def upload_signatures(self, who: Requester, body: dict[str, Any]) -> dict[str, Any]:
        with self.db.stream.allocate() as position:
            async with self.db.write() as conn:
                failures, targets = await cross_signing.store_signatures(conn, who.user_id, body)
                for user_id in targets:
                    await device_list_store.add_device_list_change(conn, user_id, position)
        if targets:
            await self._announce(set(targets))
            if who.user_id in targets:
                await self._changed(who.user_id, position, targets[who.user_id], cross_signing=True)
        return {"failures": failures}

    # ------------------------------------------------------------- devices

    async def rename_device(self, who: Requester, device_id: str, name: str) -> None:
        with self.db.stream.allocate() as position:
            async with self.db.write() as conn:
                if await account_store.get_device(conn, who.user_id, device_id) is None:
                    raise not_found("Unknown device")
                await account_store.rename_device(conn, who.user_id, device_id, name)
                await device_list_store.add_device_list_change(conn, who.user_id, position)
        await self._announce({who.user_id})
        await self._changed(who.user_id, position, [device_id])

    async def delete_devices(self, user_id: str, device_ids: list[str], *, strict: bool) -> None:
        """Log the devices out and forget their keys; with ``strict`` an unknown device is
        a 404, otherwise it is skipped."""
        gone: list[str] = []
        for device_id in device_ids:
            try:
                await self.accounts.delete_device(user_id, device_id)
            except MatrixError:
                if strict:
                    raise
                continue
            gone.append(device_id)
        await self.devices_removed(user_id, gone)

    async def devices_removed(self, user_id: str, device_ids: list[str]) -> None:
        """Forget the keys and inbox of devices that were deleted (also call after logout)."""
        if not device_ids:
            return
        with self.db.stream.allocate() as position:
            async with self.db.write() as conn:
                for device_id in device_ids:
                    await store.delete_device_data(conn, user_id, device_id)
                await device_list_store.add_device_list_change(conn, user_id, position)
        self.key_counts.invalidate((user_id, d) for d in device_ids)
        self._unacked.difference_update((user_id, d) for d in device_ids)
        await self._announce({user_id})
        await self._changed(user_id, position, deleted=device_ids)

    # ------------------------------------------------------------- to-device

    async def send_to_device(
        self, who: Requester, event_type: str, txn_id: str, body: dict[str, Any]
    ) -> None:
        messages = to_device.checked_messages(body)

        async def send() -> None:
            local = {u: m for u, m in messages.items() if self.accounts.is_local(u)}
            remote = {u: m for u, m in messages.items() if not self.accounts.is_local(u)}
            await self.deliver(who.user_id, event_type, local)
            if remote and self.remote is not None:
                await self.remote.send_to_device(who.user_id, event_type, remote)
            elif remote:
                log.info("to-device for remote users dropped (no federation)")

        # The transaction is the endpoint (/sendToDevice/{eventType}) and the device.
        key = ("sendToDevice", event_type, txn_id, who.user_id, who.device_id)
        await self._txns.run(key, send)

    async def deliver(
        self, sender: str, event_type: str, messages: dict[str, dict[str, Any]]
    ) -> None:
        """Put to-device messages in local devices' inboxes (remote users are skipped)."""
        async with self.db.read() as conn:
            targets = await to_device.local_targets(conn, messages, self.accounts.is_local)
        if not targets:
            return
        await to_device.store_messages(self.db, sender, event_type, targets)
        self.notifier.notify({t[0] for t in targets})

    # ------------------------------------------------------------- sliding sync

    async def to_device_page(
        self, who: Requester, since: int | None, upto: int, limit: int
    ) -> tuple[list[dict[str, Any]], int]:
        """The device's to-device messages after ``since`` (those up to it are
        acknowledged), at most ``limit``, and the position to read from next."""
        return await to_device.read_inbox_page(
            self.db, (who.user_id, who.device_id), since, upto, limit
        )

    async def one_time_key_counts(self, who: Requester) -> tuple[dict[str, int], list[str]]:
        """The device's one-time key counts by algorithm and its unused fallback key types."""
        counts, unused = await self.key_counts.get(who.user_id, who.device_id)
        return {SIGNED_CURVE25519: 0, **counts}, unused

    # ------------------------------------------------------------- /sync

    async def sync_extension(
        self,
        who: Requester,
        since: int | None,
        upto: int,
        response: dict[str, Any],
        joined_rooms: Sequence[str],
    ) -> None:
        device = (who.user_id, who.device_id)
        changes = self.db.changes
        events: list[dict[str, Any]] = []
        # The inbox is read when something arrived, or when messages handed out earlier
        # wait for this sync to acknowledge them (then they are deleted).
        if (
            since is None
            or device in self._unacked
            or changes.to_device.changed_since(device, since)
        ):
            events = await to_device.read_inbox(self.db, device, since, upto)
            if events:
                self._unacked.add(device)
            else:
                self._unacked.discard(device)
        response["to_device"] = {"events": events}
        if since is not None:
            changed: list[str] = []
            left: list[str] = []
            # Device lists change when someone's devices change or someone joins or leaves
            # a room shared with the user (or the user joins or leaves one).
            if (
                changes.device_lists.anything_since(since)
                or changes.memberships.changed_since(who.user_id, since)
                or changes.room_state.any_changed_since(joined_rooms, since)
            ):
                changed, left = await self.device_list_delta(who.user_id, since, upto)
            response["device_lists"] = {"changed": changed, "left": left}
        counts, unused = await self.key_counts.get(*device)
        response["device_one_time_keys_count"] = {SIGNED_CURVE25519: 0, **counts}
        response["device_unused_fallback_key_types"] = unused
