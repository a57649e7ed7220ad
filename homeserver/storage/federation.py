"""Storage for federation: remote server keys, the outbound queue, received transactions.

Implements the ``KeyStore`` and ``QueueStore`` ports of the federation package.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from federation.canonical import encode_canonical_json
from federation.ports import QueuedItem, StoredKey
from homeserver.storage.database import Database
from homeserver.storage.schema import federation_inbound_txns, federation_queue, server_keys


class SqlKeyStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get_server_key(self, server_name: str, key_id: str) -> StoredKey | None:
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    select(server_keys).where(
                        server_keys.c.server_name == server_name, server_keys.c.key_id == key_id
                    )
                )
            ).first()
        return (
            StoredKey(row.server_name, row.key_id, row.public_key, row.valid_until_ts)
            if row
            else None
        )

    async def store_server_keys(self, keys: list[StoredKey]) -> None:
        async with self.db.write() as conn:
            for key in keys:
                await conn.execute(
                    delete(server_keys).where(
                        server_keys.c.server_name == key.server_name,
                        server_keys.c.key_id == key.key_id,
                    )
                )
                await conn.execute(
                    insert(server_keys).values(
                        server_name=key.server_name,
                        key_id=key.key_id,
                        public_key=key.public_key,
                        valid_until_ts=key.valid_until_ts,
                    )
                )


async def enqueue_rows(
    conn: AsyncConnection, destinations: list[str], kind: str, payload: dict[str, Any]
) -> None:
    """Queue an item for each destination within the caller's transaction."""
    if not destinations:
        return
    text = encode_canonical_json(payload).decode("utf-8")
    await conn.execute(
        insert(federation_queue),
        [{"destination": d, "kind": kind, "payload": text} for d in destinations],
    )


class SqlQueueStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def enqueue(self, destinations: list[str], kind: str, payload: dict[str, Any]) -> None:
        async with self.db.write() as conn:
            await enqueue_rows(conn, destinations, kind, payload)

    async def pending(self, destination: str, max_pdus: int, max_edus: int) -> list[QueuedItem]:
        items: list[QueuedItem] = []
        async with self.db.read() as conn:
            for kind, limit in (("pdu", max_pdus), ("edu", max_edus)):
                rows = await conn.execute(
                    select(federation_queue.c.id, federation_queue.c.payload)
                    .where(
                        federation_queue.c.destination == destination,
                        federation_queue.c.kind == kind,
                    )
                    .order_by(federation_queue.c.id)
                    .limit(limit)
                )
                items += [QueuedItem(r.id, kind, json.loads(r.payload)) for r in rows]
        return sorted(items, key=lambda i: i.id)

    async def remove(self, destination: str, ids: list[int]) -> None:
        async with self.db.write() as conn:
            await conn.execute(
                delete(federation_queue).where(
                    federation_queue.c.destination == destination, federation_queue.c.id.in_(ids)
                )
            )

    async def destinations(self) -> list[str]:
        async with self.db.read() as conn:
            rows = await conn.execute(select(federation_queue.c.destination).distinct())
        return [r.destination for r in rows]


async def get_txn_response(
    conn: AsyncConnection, origin: str, txn_id: str
) -> dict[str, Any] | None:
    row = (
        await conn.execute(
            select(federation_inbound_txns.c.response).where(
                federation_inbound_txns.c.origin == origin,
                federation_inbound_txns.c.txn_id == txn_id,
            )
        )
    ).first()
    return json.loads(row.response) if row else None


async def put_txn_response(
    conn: AsyncConnection, origin: str, txn_id: str, response: dict[str, Any], ts: int
) -> None:
    await conn.execute(
        insert(federation_inbound_txns).values(
            origin=origin, txn_id=txn_id, response=json.dumps(response), received_ts=ts
        )
    )
