"""Client transaction IDs: which event a device already sent under a transaction ID of an
endpoint, so a retried request gets the same event instead of a second one."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from federation.canonical import encode_canonical_json
from homeserver.storage import driver
from homeserver.storage.schema import event_txn_ids


def txn_key(path: str, txn_id: str) -> str:
    """The key a client transaction is known by within one device: the spec scopes a
    transaction ID to a device *and* an endpoint, so the request path (with its parameters,
    e.g. the room and event type) is part of it.  Pass it as ``RoomService.send``'s
    ``txn=(device_id, key)``; the storage functions below take such keys."""
    return json.dumps([path, txn_id], ensure_ascii=False)


def _txn_row(user_id: str, device_id: str, key: str) -> dict[str, str]:
    path, txn_id = json.loads(key)
    digest = hashlib.sha256(encode_canonical_json([user_id, device_id, path, txn_id])).hexdigest()
    return {
        "txn_hash": digest,
        "user_id": user_id,
        "device_id": device_id,
        "path": path,
        "txn_id": txn_id,
    }


def txn_statement(rows: Sequence[tuple[str, str, str, str]], ts: int) -> driver.Statement:
    return (
        "INSERT INTO event_txn_ids (txn_hash, user_id, device_id, path, txn_id, event_id,"
        " created_ts) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(*_txn_row(u, d, k).values(), e, ts) for u, d, k, e in rows],
    )


async def delete_txn_ids_before(conn: AsyncConnection, before_ts: int) -> int:
    """Forget client transaction IDs recorded before ``before_ts``; how many went."""
    result = await conn.execute(delete(event_txn_ids).where(event_txn_ids.c.created_ts < before_ts))
    return int(result.rowcount or 0)


async def txn_events(
    conn: AsyncConnection, keys: Sequence[tuple[str, str, str]]
) -> dict[tuple[str, str, str], str]:
    """Event IDs already sent under ``(user_id, device_id, txn key)`` keys."""
    by_hash = {_txn_row(*k)["txn_hash"]: k for k in keys}
    if not by_hash:
        return {}
    rows = await driver.fetchall(
        conn,
        "SELECT txn_hash, event_id FROM event_txn_ids"
        f" WHERE txn_hash IN ({driver.placeholders(len(by_hash))})",
        sorted(by_hash),
    )
    return {by_hash[txn_hash]: event_id for txn_hash, event_id in rows}


async def transaction_ids(
    conn: AsyncConnection, event_ids: Sequence[str], user_id: str, device_id: str
) -> dict[str, str]:
    """The client transaction IDs of those events that ``device_id`` of ``user_id`` sent."""
    found: dict[str, str] = {}
    ids = list(event_ids)
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        rows = await driver.fetchall(
            conn,
            "SELECT event_id, txn_id FROM event_txn_ids WHERE user_id = ? AND device_id = ?"
            f" AND event_id IN ({driver.placeholders(len(chunk))})",
            [user_id, device_id, *chunk],
        )
        found.update((event_id, txn_id) for event_id, txn_id in rows)
    return found


async def get_txn_event(
    conn: AsyncConnection, user_id: str, device_id: str, key: str
) -> str | None:
    """The event sent under ``key`` (see ``txn_key``) by that device, if any."""
    digest = _txn_row(user_id, device_id, key)["txn_hash"]
    row = (
        await conn.execute(
            select(event_txn_ids.c.event_id).where(event_txn_ids.c.txn_hash == digest)
        )
    ).first()
    return row.event_id if row else None


async def insert_txn_event(
    conn: AsyncConnection, user_id: str, device_id: str, key: str, event_id: str, ts: int
) -> None:
    await conn.execute(
        insert(event_txn_ids).values(
            **_txn_row(user_id, device_id, key), event_id=event_id, created_ts=ts
        )
    )
