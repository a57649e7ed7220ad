"""Local users' keys for ``/keys/query`` and their one-time keys for ``/keys/claim``
(other servers' users are asked over federation by :class:`KeysService`)."""

from __future__ import annotations

import copy
from typing import Any

from homeserver.e2ee import cross_signing
from homeserver.storage import keys as store
from homeserver.storage.database import Database

#: How long /keys/query and /keys/claim wait for other servers by default.
DEFAULT_REMOTE_TIMEOUT_MS = 10_000


def remote_timeout(body: dict[str, Any]) -> float:
    """Seconds to wait for other servers: the body's ``timeout`` (ms) within 1-60 s."""
    timeout = body.get("timeout", DEFAULT_REMOTE_TIMEOUT_MS)
    if not isinstance(timeout, int) or isinstance(timeout, bool):
        timeout = DEFAULT_REMOTE_TIMEOUT_MS
    return max(1_000, min(timeout, 60_000)) / 1000


def no_federation() -> dict[str, Any]:
    """The failure reported for a server when this node has no federation."""
    return {"status": 503, "message": "Federation is not available on this server"}


async def add_local_keys(
    db: Database, result: dict[str, Any], user_id: str, device_ids: list[str], viewer: str
) -> None:
    """Put a local user's device keys (all devices when ``device_ids`` is empty) and
    cross-signing keys, as ``viewer`` may see them, in a /keys/query result."""
    async with db.read() as conn:
        found = await store.devices_with_keys(conn, user_id, device_ids or None)
        cross = await store.get_cross_signing_keys(conn, user_id)
    per_user: dict[str, Any] = {}
    for device in found:
        if device.keys is None:
            continue
        keys = copy.deepcopy(device.keys)
        keys["unsigned"] = (
            {"device_display_name": device.display_name} if device.display_name is not None else {}
        )
        per_user[device.device_id] = keys
    result["device_keys"][user_id] = per_user
    for key_type, envelope in cross.items():
        if key_type == "user_signing" and user_id != viewer:
            continue
        result[f"{key_type}_keys"][user_id] = cross_signing.render(envelope, viewer)


async def claim_local(
    db: Database, requests: list[tuple[str, str, str]]
) -> dict[str, dict[str, dict[str, Any]]]:
    """Take a one-time key (else the fallback key, marked used) per (user, device,
    algorithm): user ID -> device ID -> {key ID: key}.  Deleted devices get nothing."""
    claimed: dict[str, dict[str, dict[str, Any]]] = {}
    async with db.write() as conn:
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
    return claimed
