"""Devices, device and cross-signing keys, one-time keys, device lists and to-device messages.

Every change of a user's devices or keys is a row in ``device_list_changes`` at a stream
position; users sharing a room with that user (and the user's own devices) see it in
``device_lists.changed`` of their next /sync and are woken up for it.
"""

from __future__ import annotations

import contextlib
import copy
import logging
from collections.abc import Sequence
from typing import Any, Protocol

from federation.errors import FederationError
from federation.signing import signing_bytes, verify_json
from homeserver.accounts.service import AccountService, Requester
from homeserver.common.clock import Clock
from homeserver.common.errors import MatrixError, bad_json, invalid_param, not_found
from homeserver.common.notifier import Notifier
from homeserver.common.txncache import TransactionCache
from homeserver.e2ee import validate
from homeserver.e2ee.backup import BackupService
from homeserver.e2ee.counts import KeyCounts
from homeserver.storage import accounts as account_store
from homeserver.storage import keys as store
from homeserver.storage.database import Database

log = logging.getLogger(__name__)

#: Algorithm whose count clients expect in /sync even when it is zero.
SIGNED_CURVE25519 = "signed_curve25519"
MAX_ONE_TIME_KEYS_PER_UPLOAD = 1000
#: How long /keys/query and /keys/claim wait for other servers by default.
DEFAULT_REMOTE_TIMEOUT_MS = 10_000


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


def _remote_timeout(body: dict[str, Any]) -> float:
    timeout = body.get("timeout", DEFAULT_REMOTE_TIMEOUT_MS)
    if not isinstance(timeout, int) or isinstance(timeout, bool):
        timeout = DEFAULT_REMOTE_TIMEOUT_MS
    return max(1_000, min(timeout, 60_000)) / 1000


class KeysService:
    def __init__(
        self,
        db: Database,
        accounts: AccountService,
        notifier: Notifier,
        clock: Clock,
        server_name: str,
    ) -> None:
        self.db = db
        self.accounts = accounts
        self.notifier = notifier
        self.clock = clock
        self.server_name = server_name
        self.backup = BackupService(db)
        #: Retried /sendToDevice requests (same path, same device) are delivered once.
        self._txns: TransactionCache[None] = TransactionCache()
        #: Other servers' users, set when federation is wired (else they are failures).
        self.remote: RemoteKeys | None = None
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
                wake |= await store.users_sharing_rooms(conn, user_id)
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
        """(changed, left) for ``user_id`` between two stream positions.

        changed: users sharing a room with the user (or the user) whose devices or keys
        changed, and users who started sharing a room with the user.  left: users who no
        longer share any room with the user after a membership change in the range.
        """
        async with self.db.read() as conn:
            rooms_now = await store.joined_rooms(conn, user_id)
            sharing = await store.joined_members(conn, rooms_now) | {user_id}
            changed = await store.users_with_device_changes(conn, after, upto, sharing)
            maybe_left: set[str] = set()
            for change in await store.membership_changes_in_rooms(conn, rooms_now, after, upto):
                if change.user_id == user_id:
                    continue
                if change.membership == "join":
                    changed.add(change.user_id)
                else:
                    maybe_left.add(change.user_id)
            for change in await store.own_membership_changes(conn, user_id, after, upto):
                members = await store.joined_members(conn, [change.room_id]) - {user_id}
                if change.membership == "join":
                    changed |= members
                else:
                    maybe_left |= members
        left = maybe_left - sharing
        changed = (changed & sharing) - left
        return sorted(changed), sorted(left)

    # ------------------------------------------------------------- upload

    async def upload(self, who: Requester, body: dict[str, Any]) -> dict[str, int]:
        device_keys = body.get("device_keys")
        if device_keys is not None:
            if who.device_id.startswith(store.CROSS_SIGNING_PREFIX):
                raise invalid_param("This device ID cannot hold device keys")
            device_keys = validate.device_keys(device_keys, who.user_id, who.device_id)
        one_time = validate.key_map(body.get("one_time_keys"), "one_time_keys")
        if len(one_time) > MAX_ONE_TIME_KEYS_PER_UPLOAD:
            raise invalid_param(f"At most {MAX_ONE_TIME_KEYS_PER_UPLOAD} one-time keys at once")
        fallback_body = body.get("fallback_keys", body.get("org.matrix.msc2732.fallback_keys"))
        fallback = validate.key_map(fallback_body, "fallback_keys", fallback=True)

        announce = False
        with self.db.stream.allocate() as position:
            async with self.db.write() as conn:
                if device_keys is not None:
                    old = await store.get_device_keys(conn, who.user_id, who.device_id)
                    merged = _merge_device_keys(old, device_keys)
                    if old is not None and old.get("keys") != merged["keys"]:
                        # New identity keys: one-time and fallback keys signed by the old
                        # identity are useless (e.g. a device ID reused after a logout).
                        await store.delete_one_time_keys(conn, who.user_id, who.device_id)
                    if merged != old:
                        await store.set_device_keys(conn, who.user_id, who.device_id, merged)
                        await store.add_device_list_change(conn, who.user_id, position)
                        announce = True
                if one_time:
                    existing = await store.get_one_time_keys(
                        conn, who.user_id, who.device_id, list(one_time)
                    )
                    for kid, key in existing.items():
                        if key != one_time[kid]:
                            raise invalid_param(f"One-time key {kid} already exists")
                    await store.add_one_time_keys(
                        conn,
                        who.user_id,
                        who.device_id,
                        [(k, v) for k, v in one_time.items() if k not in existing],
                    )
                last_per_algorithm = {kid.split(":", 1)[0]: kid for kid in fallback}
                for kid in last_per_algorithm.values():
                    await store.set_fallback_key(
                        conn, who.user_id, who.device_id, kid, fallback[kid]
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
            if not self.accounts.is_local(user_id):
                if self.remote is None:
                    server = user_id.split(":", 1)[1]
                    result["failures"][server] = {
                        "status": 503,
                        "message": "Federation is not available on this server",
                    }
                else:
                    remote[user_id] = device_ids
                continue
            async with self.db.read() as conn:
                found = await store.devices_with_keys(conn, user_id, device_ids or None)
                cross = await store.get_cross_signing_keys(conn, user_id)
            per_user: dict[str, Any] = {}
            for device in found:
                if device.keys is None:
                    continue
                keys = copy.deepcopy(device.keys)
                keys["unsigned"] = (
                    {"device_display_name": device.display_name}
                    if device.display_name is not None
                    else {}
                )
                per_user[device.device_id] = keys
            result["device_keys"][user_id] = per_user
            for key_type, envelope in cross.items():
                if key_type == "user_signing" and user_id != who.user_id:
                    continue
                result[f"{key_type}_keys"][user_id] = _render_cross_signing(envelope, who.user_id)
        if remote and self.remote is not None:
            answered = await self.remote.query(remote, _remote_timeout(body))
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
                    failures[user_id.split(":", 1)[1]] = {
                        "status": 503,
                        "message": "Federation is not available on this server",
                    }
        claimed: dict[str, dict[str, dict[str, Any]]] = {}
        async with self.db.write() as conn:
            existing: dict[str, set[str]] = {}
            for user_id, device_id, algorithm in requests:
                if user_id not in existing:
                    existing[user_id] = set(await store.device_ids_of(conn, user_id))
                if device_id not in existing[user_id]:
                    continue  # logged out: whatever keys it left are not handed out
                taken = await store.take_one_time_key(conn, user_id, device_id, algorithm)
                if taken is None:
                    fallback = await store.get_fallback_key(conn, user_id, device_id, algorithm)
                    if fallback is None:
                        continue
                    kid, key, used = fallback
                    if not used:
                        await store.mark_fallback_used(conn, user_id, device_id, kid, key)
                    taken = (kid, key)
                claimed.setdefault(user_id, {})[device_id] = {taken[0]: taken[1]}
        # The devices' owners learn their new counts (and used fallback keys) on /sync.
        self.key_counts.invalidate((u, d) for u, per in claimed.items() for d in per)
        self.notifier.notify(claimed)
        if remote and self.remote is not None:
            answered = await self.remote.claim(remote, _remote_timeout(body))
            claimed.update(answered.get("one_time_keys", {}))
            failures.update(answered.get("failures", {}))
        return {"one_time_keys": claimed, "failures": failures}

    # ------------------------------------------------------------- cross-signing

    async def cross_signing_needs_uia(self, who: Requester, body: dict[str, Any]) -> bool:
        """Whether this upload must be confirmed with UIA: not for a first master key, nor
        for re-uploading exactly the stored keys."""
        uploaded = _uploaded_cross_signing(body, who.user_id)
        async with self.db.read() as conn:
            stored = await store.get_cross_signing_keys(conn, who.user_id)
        if "master" not in stored:
            return False
        return any(
            key_type not in stored or stored[key_type]["key"] != key
            for key_type, key in uploaded.items()
        )

    async def upload_cross_signing(self, who: Requester, body: dict[str, Any]) -> None:
        uploaded = _uploaded_cross_signing(body, who.user_id)
        if not uploaded:
            raise MatrixError(400, "M_MISSING_PARAM", "No cross-signing keys given")
        with self.db.stream.allocate() as position:
            async with self.db.write() as conn:
                stored = await store.get_cross_signing_keys(conn, who.user_id)
                master = uploaded.get("master") or (stored.get("master") or {}).get("key")
                if master is None:
                    raise MatrixError(
                        400, "M_MISSING_PARAM", "Upload a master key with or before the others"
                    )
                master_kid, master_public = next(iter(master["keys"].items()))
                for key_type in ("self_signing", "user_signing"):
                    if key_type in uploaded:
                        try:
                            verify_json(uploaded[key_type], who.user_id, master_kid, master_public)
                        except (FederationError, ValueError):
                            raise invalid_param(
                                f"The {key_type} key is not signed by the master key"
                            ) from None
                changed = False
                for key_type, key in uploaded.items():
                    old = stored.get(key_type)
                    if old is not None and old["key"] == key:
                        continue
                    envelope = {"key": key, "private_signatures": {}}
                    await store.set_cross_signing_key(conn, who.user_id, key_type, envelope)
                    changed = True
                if changed:
                    await store.add_device_list_change(conn, who.user_id, position)
        if changed:
            await self._announce({who.user_id})
            await self._changed(who.user_id, position, cross_signing=True)

    async def upload_signatures(self, who: Requester, body: dict[str, Any]) -> dict[str, Any]:
        failures: dict[str, dict[str, Any]] = {}
        changed: set[str] = set()
        targets: dict[str, list[str]] = {}
        with self.db.stream.allocate() as position:
            async with self.db.write() as conn:
                signer_keys = await self._signer_keys(conn, who.user_id)
                for user_id, objects in body.items():
                    if not validate.is_user_id(user_id) or not isinstance(objects, dict):
                        raise bad_json("Expected an object of user IDs to signed keys")
                    for target, signed in objects.items():
                        try:
                            await self._apply_signatures(
                                conn, who.user_id, signer_keys, user_id, target, signed
                            )
                            changed.add(user_id)
                            targets.setdefault(user_id, []).append(target)
                        except MatrixError as e:
                            failures.setdefault(user_id, {})[target] = {
                                "errcode": e.errcode,
                                "error": e.message,
                            }
                for user_id in changed:
                    await store.add_device_list_change(conn, user_id, position)
        if changed:
            await self._announce(changed)
            if who.user_id in changed:
                await self._changed(who.user_id, position, targets[who.user_id], cross_signing=True)
        return {"failures": failures}

    async def _signer_keys(self, conn: Any, user_id: str) -> dict[str, tuple[str, str]]:
        """key ID -> (public key, kind) of every key of the user that may sign."""
        found: dict[str, tuple[str, str]] = {}
        for key_type, envelope in (await store.get_cross_signing_keys(conn, user_id)).items():
            for kid, public in envelope["key"]["keys"].items():
                found[kid] = (public, key_type)
        for device in await store.devices_with_keys(conn, user_id):
            if device.keys is not None:
                kid = f"ed25519:{device.device_id}"
                public = device.keys.get("keys", {}).get(kid)
                if isinstance(public, str):
                    found[kid] = (public, "device")
        return found

    async def _apply_signatures(
        self,
        conn: Any,
        signer: str,
        signer_keys: dict[str, tuple[str, str]],
        user_id: str,
        target: str,
        signed: Any,
    ) -> None:
        if not isinstance(signed, dict):
            raise bad_json("A signed key must be an object")
        sigs = signed.get("signatures")
        if not isinstance(sigs, dict) or not isinstance(sigs.get(signer), dict):
            raise invalid_param("No signatures by you on this key")
        # Find what is being signed: one of the user's devices or cross-signing keys.
        cross = await store.get_cross_signing_keys(conn, user_id)
        envelope_type = next(
            (t for t, e in cross.items() if f"ed25519:{target}" in e["key"]["keys"]), None
        )
        if envelope_type is not None:
            stored = cross[envelope_type]["key"]
        elif user_id == signer:
            device_keys = await store.get_device_keys(conn, user_id, target)
            if device_keys is None or target.startswith(store.CROSS_SIGNING_PREFIX):
                raise not_found(f"Unknown key {target}")
            stored = device_keys
        else:
            raise not_found(f"Unknown key {target}")
        if signing_bytes(signed) != signing_bytes(stored):
            raise invalid_param("The signed object differs from the stored key")
        new_sigs: dict[str, str] = {}
        for kid, signature in sigs[signer].items():
            if not isinstance(signature, str):
                raise bad_json("A signature must be a string")
            if stored.get("signatures", {}).get(signer, {}).get(kid) == signature:
                continue  # already there
            if kid not in signer_keys:
                raise invalid_param(f"Unknown signing key {kid}")
            public, kind = signer_keys[kid]
            if user_id != signer and kind != "user_signing":
                raise invalid_param("Other users' keys are signed with the user-signing key")
            try:
                verify_json(
                    {**stored, "signatures": {signer: {kid: signature}}}, signer, kid, public
                )
            except (FederationError, ValueError):
                raise invalid_param(f"Invalid signature by {kid}") from None
            new_sigs[kid] = signature
        if not new_sigs:
            return
        if envelope_type is not None:
            envelope = cross[envelope_type]
            if user_id == signer:
                envelope["key"].setdefault("signatures", {}).setdefault(signer, {}).update(new_sigs)
            else:
                envelope.setdefault("private_signatures", {}).setdefault(signer, {}).update(
                    new_sigs
                )
            await store.set_cross_signing_key(conn, user_id, envelope_type, envelope)
        else:
            stored.setdefault("signatures", {}).setdefault(signer, {}).update(new_sigs)
            await store.set_device_keys(conn, user_id, target, stored)

    # ------------------------------------------------------------- devices

    async def rename_device(self, who: Requester, device_id: str, name: str) -> None:
        with self.db.stream.allocate() as position:
            async with self.db.write() as conn:
                if await account_store.get_device(conn, who.user_id, device_id) is None:
                    raise not_found("Unknown device")
                await account_store.rename_device(conn, who.user_id, device_id, name)
                await store.add_device_list_change(conn, who.user_id, position)
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
                await store.add_device_list_change(conn, user_id, position)
        self.key_counts.invalidate((user_id, d) for d in device_ids)
        self._unacked.difference_update((user_id, d) for d in device_ids)
        await self._announce({user_id})
        await self._changed(user_id, position, deleted=device_ids)

    # ------------------------------------------------------------- to-device

    async def send_to_device(
        self, who: Requester, event_type: str, txn_id: str, body: dict[str, Any]
    ) -> None:
        messages = body.get("messages")
        if not isinstance(messages, dict):
            raise bad_json("'messages' must be an object of user IDs to devices to contents")
        for user_id, per_device in messages.items():
            if not validate.is_user_id(user_id):
                raise invalid_param(f"Invalid user ID {user_id!r}")
            if not isinstance(per_device, dict) or not all(
                isinstance(c, dict) for c in per_device.values()
            ):
                raise bad_json(f"messages.{user_id} must be an object of device IDs to contents")

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
        targets: list[tuple[str, str, dict[str, Any]]] = []
        async with self.db.read() as conn:
            for user_id, per_device in messages.items():
                if not self.accounts.is_local(user_id):
                    continue
                existing = set(await store.device_ids_of(conn, user_id))
                for device_id, content in per_device.items():
                    if device_id == "*":
                        targets.extend((user_id, d, content) for d in sorted(existing))
                    elif device_id in existing:
                        targets.append((user_id, device_id, content))
        if not targets:
            return
        with contextlib.ExitStack() as positions:
            async with self.db.write() as conn:
                for user_id, device_id, content in targets:
                    position = positions.enter_context(self.db.stream.allocate())
                    await store.add_to_device(
                        conn, position, user_id, device_id, sender, event_type, content
                    )
        self.notifier.notify({t[0] for t in targets})

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
            async with self.db.read() as conn:
                inbox = await store.to_device_messages(conn, *device, upto)
            if since is not None and any(m.stream_id <= since for m in inbox):
                # The client has seen everything up to ``since``: those are acknowledged.
                async with self.db.write() as conn:
                    await store.delete_to_device_upto(conn, *device, since)
            events = [
                {"sender": m.sender, "type": m.type, "content": m.content}
                for m in inbox
                if since is None or m.stream_id > since
            ]
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


def _merge_device_keys(old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    """The new device keys, keeping signatures others made on the same keys."""
    new = {k: v for k, v in new.items() if k != "unsigned"}
    if old is None or signing_bytes(old) != signing_bytes(new):
        return new
    merged = copy.deepcopy(old)
    for signer, sigs in new.get("signatures", {}).items():
        merged.setdefault("signatures", {}).setdefault(signer, {}).update(sigs)
    return merged


def _uploaded_cross_signing(body: dict[str, Any], user_id: str) -> dict[str, dict[str, Any]]:
    uploaded: dict[str, dict[str, Any]] = {}
    for key_type in store.CROSS_SIGNING_TYPES:
        value = body.get(f"{key_type}_key")
        if value is not None:
            key, _, _ = validate.cross_signing_key(value, key_type, user_id)
            uploaded[key_type] = {k: v for k, v in key.items() if k != "unsigned"}
    return uploaded


def _render_cross_signing(envelope: dict[str, Any], viewer: str) -> dict[str, Any]:
    key = copy.deepcopy(envelope["key"])
    private = envelope.get("private_signatures", {}).get(viewer)
    if private:
        key.setdefault("signatures", {}).setdefault(viewer, {}).update(private)
    return dict(key)
