"""End-to-end encryption keys: device keys, one-time and fallback keys, cross-signing keys.

How the existing tables are used:

- ``device_keys``: one row per device with its signed device keys.  The user's cross-signing
  keys live in the same table under reserved device IDs (``CROSS_SIGNING_PREFIX`` + the key
  type), as an envelope ``{"key": <the key>, "private_signatures": {signer: {key ID: sig}}}``
  (signatures by other users' user-signing keys, shown only to their signer); every device
  query joins ``devices`` so those rows never show up as devices.
- ``one_time_keys``: one-time keys (``fallback`` false) and fallback keys (``fallback``
  true, at most one per algorithm).  A fallback row's ``json`` is an envelope
  ``{"key": <the key>, "used": bool}`` so that "used since upload" survives restarts.

Device list changes and the membership queries behind them are in ``device_lists.py``, the
to-device inbox in ``to_device.py``, push rules in ``push.py``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from homeserver.storage.schema import device_keys, devices, one_time_keys, to_device

#: Device IDs under which cross-signing keys are stored in ``device_keys``.
CROSS_SIGNING_PREFIX = " cross-signing "
CROSS_SIGNING_TYPES = ("master", "self_signing", "user_signing")


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _like_prefix(algorithm: str) -> str:
    escaped = algorithm.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + ":%"


# ------------------------------------------------------------------ device keys


@dataclass(frozen=True)
class DeviceInfo:
    device_id: str
    display_name: str | None
    keys: dict[str, Any] | None


async def devices_with_keys(
    conn: AsyncConnection, user_id: str, device_ids: Sequence[str] | None = None
) -> list[DeviceInfo]:
    """The user's existing devices (all, or those in ``device_ids``) with their keys if any."""
    query = (
        select(devices.c.device_id, devices.c.display_name, device_keys.c.json)
        .select_from(
            devices.outerjoin(
                device_keys,
                and_(
                    device_keys.c.user_id == devices.c.user_id,
                    device_keys.c.device_id == devices.c.device_id,
                ),
            )
        )
        .where(devices.c.user_id == user_id)
        .order_by(devices.c.device_id)
    )
    if device_ids is not None:
        query = query.where(devices.c.device_id.in_(list(device_ids)))
    return [
        DeviceInfo(r.device_id, r.display_name, json.loads(r.json) if r.json else None)
        for r in await conn.execute(query)
    ]


async def device_ids_of(conn: AsyncConnection, user_id: str) -> list[str]:
    rows = await conn.execute(
        select(devices.c.device_id)
        .where(devices.c.user_id == user_id)
        .order_by(devices.c.device_id)
    )
    return [r.device_id for r in rows]


async def get_device_keys(
    conn: AsyncConnection, user_id: str, device_id: str
) -> dict[str, Any] | None:
    row = (
        await conn.execute(
            select(device_keys.c.json).where(
                device_keys.c.user_id == user_id, device_keys.c.device_id == device_id
            )
        )
    ).first()
    return json.loads(row.json) if row else None


async def set_device_keys(
    conn: AsyncConnection, user_id: str, device_id: str, keys: dict[str, Any]
) -> None:
    await conn.execute(
        delete(device_keys).where(
            device_keys.c.user_id == user_id, device_keys.c.device_id == device_id
        )
    )
    await conn.execute(
        insert(device_keys).values(user_id=user_id, device_id=device_id, json=_dumps(keys))
    )


# ------------------------------------------------------------------ cross-signing keys


async def get_cross_signing_keys(conn: AsyncConnection, user_id: str) -> dict[str, dict[str, Any]]:
    """key type (master, self_signing, user_signing) -> key, for those the user has."""
    ids = [CROSS_SIGNING_PREFIX + t for t in CROSS_SIGNING_TYPES]
    rows = await conn.execute(
        select(device_keys.c.device_id, device_keys.c.json).where(
            device_keys.c.user_id == user_id, device_keys.c.device_id.in_(ids)
        )
    )
    return {r.device_id[len(CROSS_SIGNING_PREFIX) :]: json.loads(r.json) for r in rows}


async def set_cross_signing_key(
    conn: AsyncConnection, user_id: str, key_type: str, key: dict[str, Any]
) -> None:
    await set_device_keys(conn, user_id, CROSS_SIGNING_PREFIX + key_type, key)


# ------------------------------------------------------------------ one-time and fallback keys


async def one_time_key_counts(
    conn: AsyncConnection, user_id: str, device_id: str
) -> dict[str, int]:
    rows = await conn.execute(
        select(one_time_keys.c.key_id).where(
            one_time_keys.c.user_id == user_id,
            one_time_keys.c.device_id == device_id,
            ~one_time_keys.c.fallback,
        )
    )
    counts: dict[str, int] = {}
    for row in rows:
        algorithm = row.key_id.split(":", 1)[0]
        counts[algorithm] = counts.get(algorithm, 0) + 1
    return counts


async def get_one_time_keys(
    conn: AsyncConnection, user_id: str, device_id: str, key_ids: Sequence[str]
) -> dict[str, Any]:
    """key ID -> stored key, for those of ``key_ids`` the device has as one-time keys."""
    rows = await conn.execute(
        select(one_time_keys.c.key_id, one_time_keys.c.json).where(
            one_time_keys.c.user_id == user_id,
            one_time_keys.c.device_id == device_id,
            one_time_keys.c.key_id.in_(list(key_ids)),
            ~one_time_keys.c.fallback,
        )
    )
    return {r.key_id: json.loads(r.json) for r in rows}


async def add_one_time_keys(
    conn: AsyncConnection, user_id: str, device_id: str, keys: Iterable[tuple[str, Any]]
) -> None:
    values = [
        {
            "user_id": user_id,
            "device_id": device_id,
            "key_id": key_id,
            "json": _dumps(key),
            "fallback": False,
        }
        for key_id, key in keys
    ]
    if values:
        await conn.execute(insert(one_time_keys), values)


async def get_fallback_key(
    conn: AsyncConnection, user_id: str, device_id: str, algorithm: str
) -> tuple[str, Any, bool] | None:
    """(key ID, key, used) of the device's fallback key for ``algorithm``."""
    row = (
        await conn.execute(
            select(one_time_keys.c.key_id, one_time_keys.c.json).where(
                one_time_keys.c.user_id == user_id,
                one_time_keys.c.device_id == device_id,
                one_time_keys.c.fallback,
                one_time_keys.c.key_id.like(_like_prefix(algorithm), escape="\\"),
            )
        )
    ).first()
    if row is None:
        return None
    envelope = json.loads(row.json)
    return row.key_id, envelope["key"], bool(envelope["used"])


async def set_fallback_key(
    conn: AsyncConnection, user_id: str, device_id: str, key_id: str, key: Any
) -> None:
    """Replace the fallback key of the key's algorithm; re-uploading the same key keeps its
    used flag, a new key starts unused."""
    algorithm = key_id.split(":", 1)[0]
    existing = await get_fallback_key(conn, user_id, device_id, algorithm)
    used = existing is not None and existing[0] == key_id and existing[1] == key and existing[2]
    await conn.execute(
        delete(one_time_keys).where(
            one_time_keys.c.user_id == user_id,
            one_time_keys.c.device_id == device_id,
            one_time_keys.c.fallback,
            one_time_keys.c.key_id.like(_like_prefix(algorithm), escape="\\"),
        )
    )
    await conn.execute(
        insert(one_time_keys).values(
            user_id=user_id,
            device_id=device_id,
            key_id=key_id,
            json=_dumps({"key": key, "used": used}),
            fallback=True,
        )
    )


async def mark_fallback_used(
    conn: AsyncConnection, user_id: str, device_id: str, key_id: str, key: Any
) -> None:
    await conn.execute(
        update(one_time_keys)
        .where(
            one_time_keys.c.user_id == user_id,
            one_time_keys.c.device_id == device_id,
            one_time_keys.c.key_id == key_id,
            one_time_keys.c.fallback,
        )
        .values(json=_dumps({"key": key, "used": True}))
    )


async def unused_fallback_algorithms(
    conn: AsyncConnection, user_id: str, device_id: str
) -> list[str]:
    rows = await conn.execute(
        select(one_time_keys.c.key_id, one_time_keys.c.json).where(
            one_time_keys.c.user_id == user_id,
            one_time_keys.c.device_id == device_id,
            one_time_keys.c.fallback,
        )
    )
    return sorted({r.key_id.split(":", 1)[0] for r in rows if not json.loads(r.json).get("used")})


async def take_one_time_key(
    conn: AsyncConnection, user_id: str, device_id: str, algorithm: str
) -> tuple[str, Any] | None:
    """Remove and return one one-time key of ``algorithm``; None when there is none left.

    The delete is checked, so two concurrent claims never hand out the same key.
    """
    for _ in range(10):
        row = (
            await conn.execute(
                select(one_time_keys.c.key_id, one_time_keys.c.json)
                .where(
                    one_time_keys.c.user_id == user_id,
                    one_time_keys.c.device_id == device_id,
                    ~one_time_keys.c.fallback,
                    one_time_keys.c.key_id.like(_like_prefix(algorithm), escape="\\"),
                )
                .order_by(one_time_keys.c.key_id)
                .limit(1)
            )
        ).first()
        if row is None:
            return None
        result = await conn.execute(
            delete(one_time_keys).where(
                one_time_keys.c.user_id == user_id,
                one_time_keys.c.device_id == device_id,
                one_time_keys.c.key_id == row.key_id,
                ~one_time_keys.c.fallback,
            )
        )
        if result.rowcount == 1:
            return row.key_id, json.loads(row.json)
    return None


async def delete_one_time_keys(conn: AsyncConnection, user_id: str, device_id: str) -> None:
    """Every one-time and fallback key of the device."""
    await conn.execute(
        delete(one_time_keys).where(
            one_time_keys.c.user_id == user_id, one_time_keys.c.device_id == device_id
        )
    )


async def delete_device_data(conn: AsyncConnection, user_id: str, device_id: str) -> None:
    """Everything end-to-end encryption keeps for a device that is gone."""
    await conn.execute(
        delete(device_keys).where(
            device_keys.c.user_id == user_id, device_keys.c.device_id == device_id
        )
    )
    await delete_one_time_keys(conn, user_id, device_id)
    await conn.execute(
        delete(to_device).where(to_device.c.user_id == user_id, to_device.c.device_id == device_id)
    )
