"""Fetching what received events build on, before the room's lock is taken.

As Synapse does: for an event pushed to us whose prev events are unknown, the missing
events are asked for with ``/get_missing_events`` (10 at most); events pulled that way (or
by backfill) whose own prev events are still unknown get the state after each such prev
event from ``/state_ids`` (and the events it names from ``/event``, or one ``/state``
answer when many are unknown).  A pulled event for which that fails is dropped; a pushed
event whose prev events are still unknown afterwards is dropped too (Synapse:
"Your server isn't divulging details about prev_events").  Unknown auth events are asked
for with ``/event_auth``.  Events fetched for state and auth are verified, checked against
their own auth events and stored as outliers.

None of this holds the room's lock, so a slow or unresponsive server delays only its own
``/send``; each request is still bounded by :data:`FETCH_TIMEOUT_S`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

from federation import auth as engine_auth
from federation.client import FederationClient, FederationClientError, federation_path
from federation.errors import AuthError
from homeserver.federation.planner import NOT_DIVULGING, Candidate, StateMap
from homeserver.federation.verify import Verifier
from homeserver.rooms.cache import RoomCache
from homeserver.rooms.incoming import IncomingStore
from homeserver.rooms.service import RoomService
from homeserver.storage import events as event_store

log = logging.getLogger(__name__)

#: Events asked for with one /get_missing_events.
MAX_MISSING = 10
#: Events fetched one by one for a state; beyond that one /state answer is asked for.
MAX_SINGLE_FETCHES = 50
#: Each request made while receiving gets this long (not the client's 60 s default): the
#: sending server waits for its /send answer meanwhile.
FETCH_TIMEOUT_S = 10.0


class StateUnavailable(Exception):
    """The state after an event could not be had from the server asked."""


def _depth(pdu: dict[str, Any]) -> int:
    depth = pdu.get("depth", 0)
    return depth if isinstance(depth, int) else 0


class RemoteFetcher:
    def __init__(
        self,
        rooms: RoomService,
        verifier: Verifier,
        client: FederationClient,
        incoming: IncomingStore,
    ) -> None:
        self.rooms = rooms
        self.verifier = verifier
        self.client = client
        self.incoming = incoming

    # ------------------------------------------------------------- events pushed to us

    async def prepare_pushed(
        self, origin: str, room: RoomCache, events: list[tuple[str, dict[str, Any]]]
    ) -> tuple[list[Candidate], dict[str, str]]:
        """The events to process, in order (with those pulled to fill gaps before the
        events needing them), and the pushed events dropped, with why."""
        candidates: dict[str, Candidate] = {}
        dropped: dict[str, str] = {}
        for event_id, pdu in events:
            if event_id in candidates:
                continue
            if await self._missing_prevs(pdu, candidates):
                await self._pull_missing(origin, room, event_id, pdu, candidates)
                missing = await self._missing_prevs(pdu, candidates)
                if missing:
                    log.info(
                        "dropping %s from %s: its prev events %s could not be fetched",
                        event_id, origin, ", ".join(missing[:5]),
                    )  # fmt: skip
                    dropped[event_id] = NOT_DIVULGING
                    continue
            candidates[event_id] = Candidate(event_id, pdu)
        await self._fetch_auth(origin, room, list(candidates.values()))
        return list(candidates.values()), dropped

    async def prepare_pulled(
        self,
        origin: str,
        room: RoomCache,
        events: list[tuple[str, dict[str, Any]]],
        positions: dict[str, int] | None = None,
    ) -> list[Candidate]:
        """Events pulled from ``origin`` (backfill), oldest first, each with the state
        after its unknown prev events; those for which that state cannot be had are
        left out."""
        candidates: dict[str, Candidate] = {}
        for event_id, pdu in sorted(events, key=lambda item: _depth(item[1])):
            cand = await self._pulled(origin, room, event_id, pdu, candidates)
            if cand is not None:
                cand.position = (positions or {}).get(event_id)
                candidates[event_id] = cand
        await self._fetch_auth(origin, room, list(candidates.values()))
        return list(candidates.values())

    async def _missing_prevs(
        self, pdu: dict[str, Any], candidates: dict[str, Candidate]
    ) -> list[str]:
        """Prev events neither in the timeline nor among ``candidates``."""
        prevs = [
            p for p in pdu.get("prev_events", []) if isinstance(p, str) and p not in candidates
        ]
        known = await self.rooms.get_events(prevs)
        return [p for p in dict.fromkeys(prevs) if p not in known or known[p].outlier]

    async def _pull_missing(
        self,
        origin: str,
        room: RoomCache,
        event_id: str,
        pdu: dict[str, Any],
        candidates: dict[str, Candidate],
    ) -> None:
        prevs = [p for p in pdu.get("prev_events", []) if isinstance(p, str)]
        missing = set(await self._missing_prevs(pdu, candidates))
        earliest = list(dict.fromkeys([*room.extremities, *(p for p in prevs if p not in missing)]))
        # As Synapse: no deeper back than where this server's history of the room begins.
        async with self.rooms.db.read() as conn:
            min_depth = await event_store.room_min_depth(conn, room.room_id)
        try:
            body = await self.client.request(
                origin,
                "POST",
                federation_path("v1", "get_missing_events", room.room_id),
                body={
                    "earliest_events": earliest,
                    "latest_events": [event_id],
                    "limit": MAX_MISSING,
                    "min_depth": min_depth,
                },
                timeout_s=FETCH_TIMEOUT_S,
            )
        except FederationClientError as e:
            log.info("get_missing_events from %s failed: %s", origin, e)
            return
        events = body.get("events") if isinstance(body, dict) else None
        if not isinstance(events, list):
            return
        verified = await self.verifier.verify_many(events, room)
        verified.pop(event_id, None)
        stored = await self.rooms.get_events(verified)
        new = [
            (i, p)
            for i, p in verified.items()
            if i not in candidates and (i not in stored or stored[i].outlier)
        ]
        for pulled_id, pulled in sorted(new, key=lambda item: _depth(item[1])):
            cand = await self._pulled(origin, room, pulled_id, pulled, candidates)
            if cand is not None:
                candidates[pulled_id] = cand

    async def _pulled(
        self,
        origin: str,
        room: RoomCache,
        event_id: str,
        pdu: dict[str, Any],
        candidates: dict[str, Candidate],
    ) -> Candidate | None:
        cand = Candidate(event_id, pdu, pushed=False)
        try:
            for prev in await self._missing_prevs(pdu, candidates):
                cand.remote_states[prev] = await self.state_after(origin, room, prev)
        except StateUnavailable as e:
            log.info("dropping pulled event %s: %s", event_id, e)
            return None
        return cand

    # ------------------------------------------------------------- state and auth events

    async def state_after(self, origin: str, room: RoomCache, prev_id: str) -> StateMap:
        """The state after an unknown event, as ``origin`` gives it (the event and the
        state events are stored as outliers); StateUnavailable if it cannot be had."""
        try:
            body = await self.client.request(
                origin,
                "GET",
                federation_path("v1", "state_ids", room.room_id),
                query={"event_id": prev_id},
                timeout_s=FETCH_TIMEOUT_S,
            )
        except FederationClientError as e:
            raise StateUnavailable(f"state_ids at {prev_id} from {origin} failed: {e}") from e
        if not isinstance(body, dict) or not isinstance(body.get("pdu_ids"), list):
            raise StateUnavailable(f"{origin} sent a malformed state_ids answer for {prev_id}")
        state_ids = [e for e in body["pdu_ids"] if isinstance(e, str)]
        chain = body.get("auth_chain_ids")
        auth_ids = [e for e in chain if isinstance(e, str)] if isinstance(chain, list) else []
        wanted = [*auth_ids, *state_ids, prev_id]
        known = await self.rooms.get_events(wanted)
        missing = [e for e in dict.fromkeys(wanted) if e not in known]
        if len(missing) > MAX_SINGLE_FETCHES:
            # Many unknown events: one /state answer instead of one /event request each.
            await self._fetch_state(origin, room, prev_id)
        await self.fetch_events(origin, room, [prev_id, *missing[:MAX_SINGLE_FETCHES]])
        found = await self.rooms.get_events([*state_ids, prev_id])
        prev = found.get(prev_id)
        if prev is None or prev.room_id != room.room_id:
            raise StateUnavailable(f"{origin} did not give the event {prev_id}")
        unknown = [e for e in state_ids if e not in found]
        if unknown:
            log.warning("state at %s: %d events could not be fetched", prev_id, len(unknown))
        state: StateMap = {}
        for event in [*(found[e] for e in state_ids if e in found), prev]:
            if (
                event.room_id == room.room_id
                and event.state_key is not None
                and event.rejected_reason is None
            ):
                state[(event.type, event.state_key)] = event.event_id
        return state

    async def _fetch_state(self, origin: str, room: RoomCache, event_id: str) -> None:
        try:
            body = await self.client.request(
                origin,
                "GET",
                federation_path("v1", "state", room.room_id),
                query={"event_id": event_id},
                timeout_s=FETCH_TIMEOUT_S,
            )
        except FederationClientError as e:
            log.info("state from %s failed: %s", origin, e)
            return
        if isinstance(body, dict):
            pdus = [
                p
                for key in ("auth_chain", "pdus")
                for p in (body.get(key) or [])
                if isinstance(body.get(key), list)
            ]
            await self.store_outliers(room, pdus)

    async def fetch_events(self, origin: str, room: RoomCache, event_ids: list[str]) -> None:
        """Fetch unknown events (a bounded number, a few at a time) with /event and store
        them as outliers."""
        known = await self.rooms.get_events(event_ids)
        missing = [e for e in dict.fromkeys(event_ids) if e not in known][:MAX_SINGLE_FETCHES]
        semaphore = asyncio.Semaphore(5)

        async def fetch(event_id: str) -> list[Any]:
            async with semaphore:
                try:
                    body = await self.client.request(
                        origin,
                        "GET",
                        federation_path("v1", "event", event_id),
                        timeout_s=FETCH_TIMEOUT_S,
                    )
                except FederationClientError as e:
                    log.info("could not fetch %s from %s: %s", event_id, origin, e)
                    return []
            pdus = body.get("pdus") if isinstance(body, dict) else None
            return pdus[:1] if isinstance(pdus, list) else []

        fetched = [p for batch in await asyncio.gather(*(fetch(e) for e in missing)) for p in batch]
        await self.store_outliers(room, fetched)

    async def _fetch_auth(self, origin: str, room: RoomCache, candidates: list[Candidate]) -> None:
        """/event_auth for the events citing auth events that are not known."""
        in_batch = {c.event_id for c in candidates}
        for cand in candidates:
            wanted = [
                a
                for a in cand.pdu.get("auth_events", [])
                if isinstance(a, str) and a not in in_batch
            ]
            found = await self.rooms.get_events(wanted)
            if all(a in found for a in wanted):
                continue
            try:
                body = await self.client.request(
                    origin,
                    "GET",
                    federation_path("v1", "event_auth", room.room_id, cand.event_id),
                    timeout_s=FETCH_TIMEOUT_S,
                )
            except FederationClientError as e:
                log.info("event_auth from %s failed: %s", origin, e)
                continue
            chain = body.get("auth_chain") if isinstance(body, dict) else None
            await self.store_outliers(room, chain if isinstance(chain, list) else [])

    async def store_outliers(self, room: RoomCache, pdus: Iterable[Any]) -> None:
        """Verify events outside the timeline (auth chains, state) and store them in one
        transaction, oldest first, each checked against its own auth events."""
        verified = await self.verifier.verify_many(pdus, room)
        known = await self.rooms.get_events(verified)
        todo = sorted(
            ((i, p) for i, p in verified.items() if i not in known),
            key=lambda item: _depth(item[1]),
        )
        if not todo:
            return
        new = {i for i, _ in todo}
        auth_ids = {a for _, p in todo for a in p.get("auth_events", []) if isinstance(a, str)}
        create_id = room.state.get(("m.room.create", ""))
        if create_id is None and room.version.room_id_is_create_hash:
            create_id = "$" + room.room_id[1:]
        stored = await self.rooms.get_events(
            e for e in [*auth_ids, *([create_id] if create_id else [])] if e not in new
        )
        seen = {i: (e.pdu, e.rejected_reason is not None) for i, e in stored.items()}
        rows: list[tuple[str, dict[str, Any], str | None]] = []
        for event_id, pdu in todo:
            cited = [a for a in pdu.get("auth_events", []) if isinstance(a, str) and a in seen]
            create = seen.get(create_id) if create_id else None
            if create is None and create_id in verified:
                create = (verified[create_id], False)
            rejected: str | None = None
            try:
                state = engine_auth.build_auth_state(
                    pdu,
                    {a: seen[a][0] for a in cited},
                    room.version,
                    create_event=create[0] if create else None,
                    rejected={a for a in cited if seen[a][1]},
                )
                engine_auth.check(pdu, state, room.version)
            except AuthError as e:
                rejected = f"auth events: {e}"
            seen[event_id] = (pdu, rejected is not None)
            rows.append((event_id, pdu, rejected))
        await self.incoming.write_outliers(room, rows)
