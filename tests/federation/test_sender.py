"""The sending loop of a destination outlives a failure of its own.

The fault (the queue store failing once, as a database may) cannot be caused on demand
with the real store, so the store here is an in-memory one that fails its first read,
and the client records what it is asked to send.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from federation.ports import QueuedItem
from federation.sender import TransactionSender


class FlakyStore:
    def __init__(self) -> None:
        self.items: dict[str, list[QueuedItem]] = {}
        self.next_id = 0
        self.failures = 1

    async def enqueue(self, destinations: list[str], kind: str, payload: dict[str, Any]) -> None:
        for destination in destinations:
            self.next_id += 1
            self.items.setdefault(destination, []).append(QueuedItem(self.next_id, kind, payload))

    async def pending(self, destination: str, max_pdus: int, max_edus: int) -> list[QueuedItem]:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("database is locked")
        return list(self.items.get(destination, []))

    async def remove(self, destination: str, ids: list[int]) -> None:
        self.items[destination] = [i for i in self.items.get(destination, []) if i.id not in ids]

    async def destinations(self) -> list[str]:
        return [d for d, items in self.items.items() if items]


class RecordingClient:
    server_name = "a.example"

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def request(self, destination: str, method: str, path: str, **kwargs: Any) -> Any:
        self.sent.append(kwargs["body"])
        return {"pdus": {}}

    async def close(self) -> None:
        pass


async def test_a_store_failure_does_not_stop_the_destination(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store, client = FlakyStore(), RecordingClient()
    sender = TransactionSender(client, store)  # type: ignore[arg-type]
    try:
        await sender.send_pdu({"type": "m.room.message", "event_id": "$1"}, ["b.example"])
        for _ in range(100):
            if client.sent:
                break
            await asyncio.sleep(0.05)
        # Sent after the failed read, though nothing more was queued to wake the loop.
        assert [body["pdus"] for body in client.sent] == [
            [{"type": "m.room.message", "event_id": "$1"}]
        ]
        assert store.items["b.example"] == []
        assert any(
            r.levelno == logging.ERROR and "sending to b.example failed" in r.getMessage()
            for r in caplog.records
        )
    finally:
        await sender.close()
