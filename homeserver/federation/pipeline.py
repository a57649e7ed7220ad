"""Receiving events from other servers, in the order the spec gives (checks on receipt):

1. format, 2. signatures (drop), 3. content hash (redact), 4. auth against the event's own
auth events (reject), 5. auth against the state before it (reject), 6. auth against the
current state (soft fail).  Missing prev events are fetched with /get_missing_events; if
a gap remains, the state after each unknown prev event is fetched with /state_ids.
Missing auth events are fetched with /event_auth and stored as outliers.
"""

from __future__ import annotations

import asyncio
import fnmatch
import ipaddress
import logging
from collections.abc import Iterable
from typing import Any

from federation import auth as engine_auth
from federation import events as engine_events
from federation.client import FederationClient, FederationClientError, federation_path
from federation.errors import AuthError, FederationError
from federation.keyring import KeyRing
from homeserver.rooms.cache import RoomCache, StateKey
from homeserver.rooms.resolver import StateResolver
from homeserver.rooms.service import RoomService
from homeserver.storage.events import StoredEvent

log = logging.getLogger(__name__)

StateMap = dict[StateKey, str]
MAX_MISSING = 10
#: Events fetched one by one for a gap; beyond that one /state answer is asked for.
MAX_SINGLE_FETCHES = 50
#: Requests made while a room is locked get this long (not the client's 60 s default), so a
#: slow or hostile server cannot hold up local users for long.
FETCH_TIMEOUT_S = 10.0


class DroppedEvent(Exception):
    """An event that failed the format or signature checks (never stored)."""


def server_allowed(acl: dict[str, Any], server_name: str) -> bool:
    """Whether ``m.room.server_acl`` content lets ``server_name`` participate."""
    host = (
        server_name.rsplit(":", 1)[0]
        if not server_name.startswith("[")
        else server_name.split("]")[0] + "]"
    )
    if not acl:
        return True
    if acl.get("allow_ip_literals", True) is False:
        try:
            ipaddress.ip_address(host.strip("[]"))
            return False
        except ValueError:
            pass
    deny = [d for d in acl.get("deny", []) if isinstance(d, str)]
    if any(fnmatch.fnmatchcase(host.lower(), d.lower()) for d in deny):
        return False
    allow = [a for a in acl.get("allow", []) if isinstance(a, str)]
    return any(fnmatch.fnmatchcase(host.lower(), a.lower()) for a in allow)


class EventPipeline:
    def __init__(
        self,
        rooms: RoomService,
        resolver: StateResolver,
        keyring: KeyRing,
        client: FederationClient,
        server_name: str,
    ) -> None:
        self.rooms = rooms
        self.resolver = resolver
        self.keyring = keyring
        self.client = client
        self.server_name = server_name

    # ------------------------------------------------------------- verification

    async def verify(self, pdu: Any, room: RoomCache) -> engine_events.VerifiedPDU:
        """Steps 1-3: format, signatures (keys fetched as needed), content hash."""
        try:
            engine_events.check_pdu_format(pdu, room.version)
            if pdu.get("room_id") != room.room_id and not _is_create_of(pdu, room):
                raise DroppedEvent("event is for another room")
            wanted = []
            for server in engine_events.required_signers(pdu, room.version):
                for key_id in pdu.get("signatures", {}).get(server, {}):
                    wanted.append((server, key_id, int(pdu["origin_server_ts"])))
            await self.keyring.prefetch(wanted)
            verified = engine_events.verify_pdu(pdu, room.version, self.keyring.cached)
        except FederationError as e:
            raise DroppedEvent(str(e)) from e
        if verified.redacted:
            log.info("content hash of %s does not match: redacted on receipt", verified.event_id)
        return verified

    async def verify_many(self, pdus: Iterable[Any], room: RoomCache) -> dict[str, dict[str, Any]]:
        """Verify a batch (send_join and /state answers); events failing the checks are left out."""
        items = [p for p in pdus if isinstance(p, dict)]
        wanted = []
        for pdu in items:
            try:
                for server in engine_events.required_signers(pdu, room.version):
                    for key_id in pdu.get("signatures", {}).get(server, {}):
                        wanted.append((server, key_id, int(pdu.get("origin_server_ts", 0))))
            except (FederationError, KeyError, TypeError, ValueError, AttributeError):
                continue
        await self.keyring.prefetch(wanted)
        result: dict[str, dict[str, Any]] = {}
        for pdu in items:
            try:
                verified = await self.verify(pdu, room)
            except DroppedEvent as e:
                log.info("dropping event from a batch: %s", e)
                continue
            result[verified.event_id] = verified.pdu
        return result

    # ------------------------------------------------------------- receiving

    async def receive(self, origin: str, room: RoomCache, pdu: Any) -> str:
        """Process one PDU from a transaction (the caller holds the room's lock)."""
        verified = await self.verify(pdu, room)
        existing = await self.rooms.get_event(verified.event_id)
        if existing is not None and not existing.outlier:
            return verified.event_id
        await self._fill_gaps(origin, room, verified.event_id, verified.pdu)
        await self.process(origin, room, verified.event_id, verified.pdu)
        return verified.event_id

    async def _fill_gaps(
        self, origin: str, room: RoomCache, event_id: str, pdu: dict[str, Any]
    ) -> None:
        prevs = [p for p in pdu.get("prev_events", []) if isinstance(p, str)]
        known = await self.rooms.get_events(prevs)
        if all(p in known and not known[p].outlier for p in prevs):
            return
        try:
            body = await self.client.request(
                origin,
                "POST",
                federation_path("v1", "get_missing_events", room.room_id),
                body={
                    "earliest_events": list(room.extremities),
                    "latest_events": [event_id],
                    "limit": MAX_MISSING,
                    "min_depth": 0,
                },
                timeout_s=FETCH_TIMEOUT_S,
            )
        except FederationClientError as e:
            log.info("get_missing_events from %s failed: %s", origin, e)
            return
        missing = body.get("events") if isinstance(body, dict) else None
        if not isinstance(missing, list):
            return
        verified = await self.verify_many(missing, room)
        for missing_id, missing_pdu in sorted(verified.items(), key=lambda item: _depth(item[1])):
            existing = await self.rooms.get_event(missing_id)
            if existing is None or existing.outlier:
                await self.process(origin, room, missing_id, missing_pdu)

    async def process(
        self,
        origin: str,
        room: RoomCache,
        event_id: str,
        pdu: dict[str, Any],
        *,
        backfilled: bool = False,
        position: int | None = None,
    ) -> StoredEvent:
        """Steps 4-6 and persistence, for a verified event whose prev events may be unknown."""
        auth_events = await self._auth_events(origin, room, event_id, pdu)
        rejected: str | None = None
        try:
            auth_state = engine_auth.build_auth_state(
                pdu,
                {k: v.pdu for k, v in auth_events.items()},
                room.version,
                create_event=await self._create_pdu(room),
                rejected={k for k, v in auth_events.items() if v.rejected_reason},
            )
            engine_auth.check(pdu, auth_state, room.version)
        except AuthError as e:
            rejected = f"auth events: {e}"
        state_before, group_before = await self._state_before(origin, room, pdu)
        if rejected is None:
            try:
                engine_auth.check(
                    pdu, await self._auth_state_from(room, pdu, state_before), room.version
                )
            except AuthError as e:
                rejected = f"state before: {e}"
        soft_failed = False
        if rejected is None and not backfilled:
            try:
                engine_auth.check(
                    pdu, await self._auth_state_from(room, pdu, room.state), room.version
                )
            except AuthError as e:
                log.info("soft-failing %s: %s", event_id, e)
                soft_failed = True
        new_current: StateMap | None = None
        follows_all = False
        if rejected is None and not soft_failed and not backfilled:
            state_after = dict(state_before)
            if isinstance(pdu.get("state_key"), str):
                state_after[(pdu["type"], pdu["state_key"])] = event_id
            prevs = set(pdu.get("prev_events", []))
            others = [e for e in room.extremities if e not in prevs]
            follows_all = not others
            if follows_all:
                new_current = state_after
            else:
                new_current = await self.resolver.resolve(
                    room, [dict(room.state), state_after], {event_id: pdu}
                )
        if rejected:
            log.info("rejecting %s from %s: %s", event_id, origin, rejected)
        return await self.rooms.persist_incoming(
            room,
            event_id,
            pdu,
            state_before_group=group_before,
            new_current=new_current,
            current_is_state_after=follows_all,
            rejected_reason=rejected,
            soft_failed=soft_failed,
            backfilled=backfilled,
            position=position,
        )

    async def _create_pdu(self, room: RoomCache) -> dict[str, Any] | None:
        create_id = room.state.get(("m.room.create", ""))
        event = await self.rooms.get_event(create_id) if create_id else None
        return event.pdu if event else None

    async def _auth_state_from(
        self, room: RoomCache, pdu: dict[str, Any], state: StateMap
    ) -> dict[StateKey, dict[str, Any]]:
        keys = set(engine_auth.auth_types_for_event(pdu, room.version)) | {("m.room.create", "")}
        ids = {k: state[k] for k in keys if k in state}
        found = await self.rooms.get_events(ids.values())
        return {k: found[v].pdu for k, v in ids.items() if v in found}

    async def _auth_events(
        self, origin: str, room: RoomCache, event_id: str, pdu: dict[str, Any]
    ) -> dict[str, StoredEvent]:
        wanted = [a for a in pdu.get("auth_events", []) if isinstance(a, str)]
        found = await self.rooms.get_events(wanted)
        if all(a in found for a in wanted):
            return found
        try:
            body = await self.client.request(
                origin,
                "GET",
                federation_path("v1", "event_auth", room.room_id, event_id),
                timeout_s=FETCH_TIMEOUT_S,
            )
        except FederationClientError as e:
            log.info("event_auth from %s failed: %s", origin, e)
            return found
        chain = body.get("auth_chain") if isinstance(body, dict) else None
        await self.store_outliers(room, chain if isinstance(chain, list) else [])
        return await self.rooms.get_events(wanted)

    async def store_outliers(self, room: RoomCache, pdus: Iterable[Any]) -> None:
        """Verify and store events outside the timeline (auth chains, state), oldest first,
        each checked against its own auth events."""
        verified = await self.verify_many(pdus, room)
        known = await self.rooms.get_events(verified)
        for event_id, pdu in sorted(verified.items(), key=lambda item: _depth(item[1])):
            if event_id in known:
                continue
            auth_ids = [a for a in pdu.get("auth_events", []) if isinstance(a, str)]
            auth = await self.rooms.get_events(auth_ids)
            rejected: str | None = None
            try:
                create = await self._create_pdu(room)
                if create is None and pdu.get("type") != "m.room.create":
                    create_event = (
                        verified.get("$" + room.room_id[1:])
                        if room.version.room_id_is_create_hash
                        else None
                    )
                    create = create_event
                state = engine_auth.build_auth_state(
                    pdu,
                    {k: v.pdu for k, v in auth.items()},
                    room.version,
                    create_event=create,
                    rejected={k for k, v in auth.items() if v.rejected_reason},
                )
                engine_auth.check(pdu, state, room.version)
            except AuthError as e:
                rejected = f"auth events: {e}"
            await self.rooms.persist_incoming(
                room, event_id, pdu, state_before_group=None, new_current=None,
                rejected_reason=rejected, outlier=True,
            )  # fmt: skip

    async def _state_before(
        self, origin: str, room: RoomCache, pdu: dict[str, Any]
    ) -> tuple[StateMap, int | None]:
        """The state before an event: the (resolved) states after its prev events."""
        prevs = [p for p in pdu.get("prev_events", []) if isinstance(p, str)]
        known = await self.rooms.get_events(prevs)
        states: list[StateMap] = []
        groups: list[int] = []
        for prev in prevs:
            event = known.get(prev)
            if (
                event is not None
                and not event.outlier
                and event.rejected_reason is None
                and event.state_group is not None
            ):
                async with self.rooms.db.read() as conn:
                    states.append(await self.rooms.state_store.get_state(conn, event.state_group))
                groups.append(event.state_group)
            else:
                fetched = await self._state_after_remote(origin, room, prev)
                if fetched is not None:
                    states.append(fetched)
        if not states:
            return dict(room.state), room.state_group
        if len(states) == 1 and groups:
            return states[0], groups[0]
        resolved = await self.resolver.resolve(room, states)
        base = groups[0] if groups else None
        async with self.rooms.db.read() as conn:
            base_state = await self.rooms.state_store.get_state(conn, base)
        changes: dict[StateKey, str | None] = {
            k: v for k, v in resolved.items() if base_state.get(k) != v
        }
        changes.update({k: None for k in base_state if k not in resolved})
        async with self.rooms.db.write() as conn:
            group = await self.rooms.state_store.create_group(conn, room.room_id, base, changes)
        return resolved, group

    async def _state_after_remote(
        self, origin: str, room: RoomCache, prev_id: str
    ) -> StateMap | None:
        """Ask ``origin`` for the state at an unknown prev event (plus the event itself)."""
        try:
            body = await self.client.request(
                origin,
                "GET",
                federation_path("v1", "state_ids", room.room_id),
                query={"event_id": prev_id},
                timeout_s=FETCH_TIMEOUT_S,
            )
        except FederationClientError as e:
            log.info("state_ids from %s failed: %s", origin, e)
            return None
        if not isinstance(body, dict):
            return None
        state_ids = [e for e in body.get("pdu_ids", []) if isinstance(e, str)]
        auth_ids = [e for e in body.get("auth_chain_ids", []) if isinstance(e, str)]
        wanted = [*auth_ids, *state_ids, prev_id]
        known = await self.rooms.get_events(wanted)
        missing = [e for e in dict.fromkeys(wanted) if e not in known]
        if len(missing) > MAX_SINGLE_FETCHES:
            # Many unknown events: one /state answer instead of one /event request each.
            await self._fetch_state(origin, room, prev_id)
        await self.fetch_events(origin, room, [*missing[:MAX_SINGLE_FETCHES], prev_id])
        found = await self.rooms.get_events([*state_ids, prev_id])
        state: StateMap = {}
        for event_id in state_ids:
            event = found.get(event_id)
            if event is not None and event.state_key is not None and event.rejected_reason is None:
                state[(event.type, event.state_key)] = event_id
        prev = found.get(prev_id)
        if prev is not None and prev.state_key is not None and prev.rejected_reason is None:
            state[(prev.type, prev.state_key)] = prev_id
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


def _is_create_of(pdu: dict[str, Any], room: RoomCache) -> bool:
    """A room-12 create event has no room_id: its hash is the room ID."""
    if (
        not room.version.room_id_is_create_hash
        or pdu.get("type") != "m.room.create"
        or "room_id" in pdu
    ):
        return False
    try:
        return engine_events.compute_room_id(pdu) == room.room_id
    except FederationError:
        return False


def _depth(pdu: dict[str, Any]) -> int:
    depth = pdu.get("depth", 0)
    return depth if isinstance(depth, int) else 0
