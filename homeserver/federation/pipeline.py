"""Receiving events from other servers, in the order the spec gives (checks on receipt):

1. format, 2. signatures (drop), 3. content hash (redact), 4. auth against the event's own
auth events (reject), 5. auth against the state before it (reject), 6. auth against the
current state (soft fail).

The events of one room from one ``/send`` (or one ``/backfill`` answer) go through three
phases, as Synapse's receive path does:

1. verification and fetching (``verify.py``, ``fetch.py``), without the room's lock:
   signatures, missing prev events (``/get_missing_events``), the state at gaps
   (``/state_ids``), missing auth events (``/event_auth``);
2. under the room's lock, steps 4-6 and the state of each event (``planner.py``), using
   only what is stored or was fetched in phase 1 (what arrived meanwhile is used too);
3. still under the lock, one database transaction for the whole batch (``rooms/incoming.py``).

A slow or hostile server therefore never holds up local senders, and a 50-PDU transaction
costs one commit.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from federation import events as engine_events
from federation.client import FederationClient
from federation.errors import FederationError
from federation.keyring import KeyRing
from homeserver.federation.fetch import RemoteFetcher
from homeserver.federation.planner import BatchPlanner, Candidate
from homeserver.federation.verify import DroppedEvent, Verifier, event_id_or_none
from homeserver.rooms.cache import RoomCache
from homeserver.rooms.incoming import IncomingStore
from homeserver.rooms.policy import EventPolicy
from homeserver.rooms.resolver import StateResolver
from homeserver.rooms.service import RoomService

log = logging.getLogger(__name__)


class EventPipeline:
    def __init__(
        self,
        rooms: RoomService,
        resolver: StateResolver,
        keyring: KeyRing,
        client: FederationClient,
        server_name: str,
        policy: EventPolicy | None = None,
    ) -> None:
        self.rooms = rooms
        #: The features' event policy: a received event it refuses is soft-failed.
        self.policy = policy
        self.resolver = resolver
        self.keyring = keyring
        self.client = client
        self.server_name = server_name
        self.verifier = Verifier(keyring)
        self.incoming = IncomingStore(rooms)
        self.fetcher = RemoteFetcher(rooms, self.verifier, client, self.incoming)

    # ------------------------------------------------------------- verification

    async def verify(self, pdu: Any, room: RoomCache) -> engine_events.VerifiedPDU:
        """Steps 1-3: format, signatures (keys fetched as needed), content hash."""
        return await self.verifier.verify(pdu, room)

    async def verify_many(self, pdus: Iterable[Any], room: RoomCache) -> dict[str, dict[str, Any]]:
        return await self.verifier.verify_many(pdus, room)

    async def store_outliers(self, room: RoomCache, pdus: Iterable[Any]) -> None:
        await self.fetcher.store_outliers(room, pdus)

    # ------------------------------------------------------------- receiving

    async def receive(self, origin: str, room: RoomCache, pdus: list[Any]) -> dict[str, str | None]:
        """Process the PDUs of one room from one transaction; per event ID, None when it
        was accepted, rejected or soft-failed (and stored), else why it was dropped."""
        results: dict[str, str | None] = {}
        verified: list[tuple[str, dict[str, Any]]] = []
        for pdu in pdus:
            try:
                checked = await self.verifier.verify(pdu, room)
            except DroppedEvent as e:
                event_id = event_id_or_none(pdu, room.version)
                log.info("dropped PDU %s from %s: %s", event_id, origin, e)
                if event_id is not None:
                    results[event_id] = str(e)
                continue
            verified.append((checked.event_id, checked.pdu))
        results.update(await self.receive_verified(origin, room, verified))
        return results

    async def receive_verified(
        self, origin: str, room: RoomCache, events: list[tuple[str, dict[str, Any]]]
    ) -> dict[str, str | None]:
        """:meth:`receive` for events that passed steps 1-3."""
        results: dict[str, str | None] = {event_id: None for event_id, _ in events}
        stored = await self.rooms.get_events(results)
        todo = [(i, p) for i, p in events if i not in stored or stored[i].outlier]
        if not todo:
            return results
        candidates, dropped = await self.fetcher.prepare_pushed(origin, room, todo)
        dropped.update(await self._commit(origin, room, candidates))
        for event_id, error in dropped.items():
            if event_id in results:
                log.info("dropped PDU %s from %s: %s", event_id, origin, error)
                results[event_id] = error
        return results

    async def backfill(
        self,
        origin: str,
        room: RoomCache,
        events: list[tuple[str, dict[str, Any]]],
        positions: dict[str, int],
    ) -> None:
        """Store verified events pulled with /backfill at the given stream positions."""
        candidates = await self.fetcher.prepare_pulled(origin, room, events, positions)
        await self._commit(origin, room, candidates, backfilled=True)

    async def _commit(
        self, origin: str, room: RoomCache, candidates: list[Candidate], *, backfilled: bool = False
    ) -> dict[str, str]:
        """Phases 2 and 3 under the room's lock; the events dropped, with why."""
        dropped: dict[str, str] = {}
        if not candidates:
            return dropped
        async with room.lock:
            planner = BatchPlanner(
                self.rooms, self.resolver, room, backfilled=backfilled, policy=self.policy
            )
            await planner.skip_stored([c.event_id for c in candidates])
            for cand in candidates:
                try:
                    error = await planner.add(cand)
                except FederationError as e:
                    error = f"{type(e).__name__}: {e}"
                if error is not None:
                    log.info("not storing %s from %s: %s", cand.event_id, origin, error)
                    dropped[cand.event_id] = error
            await self.incoming.write(planner.result())
        return dropped
