"""Telling other servers: local events, typing and receipts go to the servers in the room."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from federation.identifiers import domain_of
from federation.sender import TransactionSender
from homeserver.rooms.cache import RoomCache
from homeserver.rooms.reader import RoomReader
from homeserver.storage.events import StoredEvent
from homeserver.storage.federation import enqueue_rows

log = logging.getLogger(__name__)


def _targets(room: RoomCache, server_name: str, pdu: dict[str, Any] | None) -> set[str]:
    servers = {domain_of(u) for u, m in room.members.items() if m == "join"}
    if (
        pdu is not None
        and pdu.get("type") == "m.room.member"
        and isinstance(pdu.get("state_key"), str)
    ):
        servers.add(domain_of(pdu["state_key"]))  # invitees, kicked and banned users' servers
    servers.discard(server_name)
    return servers


def destinations(room: RoomCache, server_name: str, event: StoredEvent | None = None) -> set[str]:
    return _targets(room, server_name, event.pdu if event is not None else None)


class Outbound:
    def __init__(self, rooms: RoomReader, sender: TransactionSender, server_name: str) -> None:
        self.rooms = rooms
        self.sender = sender
        self.server_name = server_name
        self._tasks: set[asyncio.Task[None]] = set()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def stage(self, conn: Any, room: RoomCache, pdu: dict[str, Any]) -> None:
        """RoomService outbox: queue a local event in the transaction that persists it."""
        targets = sorted(_targets(room, self.server_name, pdu))
        await enqueue_rows(conn, targets, "pdu", pdu)

    def on_event(self, room: RoomCache, event: StoredEvent) -> None:
        """RoomService listener: after commit, wake the queues a local event went to."""
        if domain_of(event.sender) != self.server_name or event.outlier or event.rejected_reason:
            return
        self.sender.wake(destinations(room, self.server_name, event))

    def on_typing(self, room_id: str, user_id: str, typing: bool) -> None:
        room = self.rooms.cached(room_id)
        if room is None:
            return
        targets = destinations(room, self.server_name)
        if targets:
            content = {"room_id": room_id, "user_id": user_id, "typing": typing}
            self._spawn(self.sender.send_edu("m.typing", content, targets))

    def on_receipt(
        self, room: RoomCache, user_id: str, event_id: str, ts: int, thread_id: str | None
    ) -> None:
        targets = destinations(room, self.server_name)
        if not targets:
            return
        data: dict[str, Any] = {"ts": ts}
        if thread_id:
            data["thread_id"] = thread_id
        content = {room.room_id: {"m.read": {user_id: {"event_ids": [event_id], "data": data}}}}
        self._spawn(self.sender.send_edu("m.receipt", content, targets))

    def on_presence(self, user_id: str, entry: dict[str, Any], room_ids: Sequence[str]) -> None:
        """A local user's presence, to the servers sharing a room with them."""
        targets: set[str] = set()
        for room_id in room_ids:
            room = self.rooms.cached(room_id)
            if room is not None:
                targets |= destinations(room, self.server_name)
        if targets:
            self._spawn(self.sender.send_edu("m.presence", {"push": [entry]}, targets))

    def presence_to(self, entries: list[dict[str, Any]], destinations: set[str]) -> None:
        """Presence entries to these servers (one that just joined a room)."""
        self._spawn(self.sender.send_edu("m.presence", {"push": entries}, destinations))

    async def drain(self) -> None:
        """Wait until every event handed over so far is in the persisted queue."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
