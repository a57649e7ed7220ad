"""What a device uploads to ``/keys/upload``: its device keys, one-time keys and fallback
keys.  Functions on an open connection of a write, run by :class:`KeysService`."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from federation.signing import signing_bytes
from homeserver.common.errors import invalid_param
from homeserver.e2ee import validate
from homeserver.storage import keys as store

MAX_ONE_TIME_KEYS_PER_UPLOAD = 1000


@dataclass(frozen=True)
class Upload:
    """A checked ``/keys/upload`` body."""

    device_keys: dict[str, Any] | None
    one_time: dict[str, Any]
    fallback: dict[str, Any]


def parse_upload(body: dict[str, Any], user_id: str, device_id: str) -> Upload:
    device_keys = body.get("device_keys")
    if device_keys is not None:
        if device_id.startswith(store.CROSS_SIGNING_PREFIX):
            raise invalid_param("This device ID cannot hold device keys")
        device_keys = validate.device_keys(device_keys, user_id, device_id)
    one_time = validate.key_map(body.get("one_time_keys"), "one_time_keys")
    if len(one_time) > MAX_ONE_TIME_KEYS_PER_UPLOAD:
        raise invalid_param(f"At most {MAX_ONE_TIME_KEYS_PER_UPLOAD} one-time keys at once")
    fallback_body = body.get("fallback_keys", body.get("org.matrix.msc2732.fallback_keys"))
    fallback = validate.key_map(fallback_body, "fallback_keys", fallback=True)
    return Upload(device_keys, one_time, fallback)


async def store_device_keys(
    conn: Any, user_id: str, device_id: str, device_keys: dict[str, Any]
) -> bool:
    """Store the device's keys; whether they changed (then the device list changed)."""
    old = await store.get_device_keys(conn, user_id, device_id)
    merged = merge_device_keys(old, device_keys)
    if old is not None and old.get("keys") != merged["keys"]:
        # New identity keys: one-time and fallback keys signed by the old
        # identity are useless (e.g. a device ID reused after a logout).
        await store.delete_one_time_keys(conn, user_id, device_id)
    if merged == old:
        return False
    await store.set_device_keys(conn, user_id, device_id, merged)
    return True


async def store_one_time_keys(
    conn: Any, user_id: str, device_id: str, one_time: dict[str, Any], fallback: dict[str, Any]
) -> None:
    """Add the new one-time keys (one already stored must be uploaded unchanged) and the
    last fallback key of each algorithm."""
    if one_time:
        existing = await store.get_one_time_keys(conn, user_id, device_id, list(one_time))
        for kid, key in existing.items():
            if key != one_time[kid]:
                raise invalid_param(f"One-time key {kid} already exists")
        await store.add_one_time_keys(
            conn, user_id, device_id, [(k, v) for k, v in one_time.items() if k not in existing]
        )
    last_per_algorithm = {kid.split(":", 1)[0]: kid for kid in fallback}
    for kid in last_per_algorithm.values():
        await store.set_fallback_key(conn, user_id, device_id, kid, fallback[kid])


def merge_device_keys(old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    """The new device keys, keeping signatures others made on the same keys."""
    new = {k: v for k, v in new.items() if k != "unsigned"}
    if old is None or signing_bytes(old) != signing_bytes(new):
        return new
    merged = copy.deepcopy(old)
    for signer, sigs in new.get("signatures", {}).items():
        merged.setdefault("signatures", {}).setdefault(signer, {}).update(sigs)
    return merged
