"""Asking the other servers of a room for its event nearest a point in time
(``GET /_matrix/federation/v1/timestamp_to_event/{roomId}``), for the client API's
``timestamp_to_event`` where this node's history has a gap, as Synapse's
``FederationClient.timestamp_to_event`` and ``backfill_event_id`` do.

The servers in the room are asked in turn (the room's creator's first, then by how many of
their users are joined), moving on past one that cannot be reached, answers what is not the
spec's shape, fails with a 5xx or does not know the endpoint; another error (a 404: it has
no such event either) ends the asking, as Synapse. The event named is then fetched with
``/event`` (from that server, then the others) and stored as backfilled history, with the
state before it as the pipeline fetches it for any pulled event (``fetch.py``)."""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from federation.client import (
    FederationClient,
    FederationClientError,
    RemoteError,
    federation_path,
)
from federation.identifiers import domain_of
from homeserver.federation.pipeline import EventPipeline
from homeserver.federation.verify import DroppedEvent
from homeserver.rooms.cache import RoomCache
from homeserver.rooms.service import RoomService

log = logging.getLogger(__name__)

#: Each request gets this long: a client waits for its answer meanwhile.
TIMEOUT_S = 10.0


def servers_to_ask(room: RoomCache, server_name: str) -> list[str]:
    """The other servers with users joined to the room: the room creator's first (the
    oldest in it, as Synapse asks the longest-joined first), then by joined users."""
    joined = Counter(domain_of(u) for u, m in room.members.items() if m == "join")
    joined.pop(server_name, None)
    creator = room.room_id.rsplit(":", 1)[-1] if ":" in room.room_id else None
    return sorted(joined, key=lambda s: (s != creator, -joined[s], s))


def _answer(body: Any) -> str | None:
    """The event ID of a well-formed answer."""
    if not isinstance(body, dict):
        return None
    event_id, ts = body.get("event_id"), body.get("origin_server_ts")
    if not isinstance(event_id, str) or not event_id.startswith("$"):
        return None
    if not isinstance(ts, int) or isinstance(ts, bool):
        return None
    return event_id


def _fail_over(error: FederationClientError) -> bool:
    """Whether to ask the next server after this failure (Synapse's failover rules)."""
    if not isinstance(error, RemoteError):
        return True  # unreachable, timed out, too large
    return (
        error.status >= 500
        or error.errcode == "M_UNRECOGNIZED"
        or (error.status in (404, 405) and error.errcode is None)
    )


class RemoteTimestamps:
    def __init__(
        self, rooms: RoomService, pipeline: EventPipeline, client: FederationClient
    ) -> None:
        self.rooms = rooms
        self.pipeline = pipeline
        self.client = client
        self.server_name = rooms.server_name

    async def closest(self, room: RoomCache, ts: int, forward: bool) -> str | None:
        servers = servers_to_ask(room, self.server_name)
        path = federation_path("v1", "timestamp_to_event", room.room_id)
        query = {"ts": str(ts), "dir": "f" if forward else "b"}
        for server in servers:
            try:
                body = await self.client.request(
                    server, "GET", path, query=query, timeout_s=TIMEOUT_S
                )
            except FederationClientError as e:
                log.info("timestamp_to_event of %s at %s failed: %s", room.room_id, server, e)
                if _fail_over(e):
                    continue
                return None
            event_id = _answer(body)
            if event_id is None:
                log.info("timestamp_to_event: %s answered %r", server, body)
                continue
            if await self._have(room, event_id, [server, *(s for s in servers if s != server)]):
                return event_id
            return None
        return None

    async def _have(self, room: RoomCache, event_id: str, sources: list[str]) -> bool:
        """Whether the event is in this node's timeline of the room, once fetched from the
        first of ``sources`` that gives it."""
        known = await self.rooms.get_event(event_id)
        if known is not None and not known.outlier:
            return known.room_id == room.room_id
        for source in sources:
            pdu = await self._fetch(source, room, event_id)
            if pdu is None:
                continue
            position = self.rooms.db.stream.backfill_position()
            await self.pipeline.backfill(source, room, [(event_id, pdu)], {event_id: position})
            stored = await self.rooms.get_event(event_id)
            return stored is not None and not stored.outlier
        return False

    async def _fetch(self, source: str, room: RoomCache, event_id: str) -> dict[str, Any] | None:
        try:
            body = await self.client.request(
                source, "GET", federation_path("v1", "event", event_id), timeout_s=TIMEOUT_S
            )
        except FederationClientError as e:
            log.info("could not fetch %s from %s: %s", event_id, source, e)
            return None
        pdus = body.get("pdus") if isinstance(body, dict) else None
        if not isinstance(pdus, list) or not pdus:
            return None
        try:
            verified = await self.pipeline.verify(pdus[0], room)
        except DroppedEvent as e:
            log.info("%s gave an event %s that was dropped: %s", source, event_id, e)
            return None
        # (The verifier has checked that it is of this room.)
        return dict(verified.pdu) if verified.event_id == event_id else None
