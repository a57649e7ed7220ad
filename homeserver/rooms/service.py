"""Rooms: creating and persisting events, current state, memberships and reading history.

Every local event goes through :meth:`RoomService.send`: under the room's lock it picks
prev and auth events from the current state, builds and signs the PDU with the engine,
checks the authorization rules, and persists it in one transaction (event, edges, state
group, current state, membership, extremities, transaction ID) before anyone is told.
Message events sent at the same time are committed together (``groupcommit.py``); events
received from other servers are persisted by ``incoming.py``.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

from federation import auth as engine_auth
from federation import events as engine_events
from federation import room_versions
from federation.errors import AuthError, FederationError
from federation.signing import SigningKey
from homeserver.common.clock import Clock
from homeserver.common.errors import MatrixError, forbidden
from homeserver.common.notifier import Notifier
from homeserver.rooms.cache import RoomCache, StateKey
from homeserver.rooms.groupcommit import GroupCommit
from homeserver.rooms.groups import MAX_PREV_EVENTS, Pending
from homeserver.rooms.hooks import EventHook, EventListener, HookWrite, Outbox, finish_hooks
from homeserver.rooms.policy import EventPolicy, ProposedEvent
from homeserver.rooms.reader import RoomReader
from homeserver.storage import driver
from homeserver.storage import events as event_store
from homeserver.storage import extremities as extremity_store
from homeserver.storage import rooms as room_store
from homeserver.storage import search as search_store
from homeserver.storage import txns as txn_store
from homeserver.storage.events import StoredEvent

log = logging.getLogger(__name__)


class RoomService:
    """Sends local events and persists them; reads go to its :class:`RoomReader`."""

    def __init__(
        self,
        reader: RoomReader,
        notifier: Notifier,
        clock: Clock,
        server_name: str,
        signing_key: SigningKey,
        *,
        hooks: Sequence[EventHook] = (),
        listeners: Sequence[EventListener] = (),
        outbox: Outbox | None = None,
        policy: EventPolicy | None = None,
    ) -> None:
        #: The features' event policy (homeserver/extensions): asked before every event.
        self.policy = policy
        self.reader = reader
        self.db = reader.db
        self.state_store = reader.state_store
        self.events = reader.events
        self.notifier = notifier
        self.clock = clock
        self.server_name = server_name
        self.signing_key = signing_key
        #: Written inside the transaction that stores new events, local or received, after
        #: the events (push actions).
        self.hooks: list[EventHook] = list(hooks)
        #: Called with each newly persisted event (federation sender, metrics...).
        self.listeners: list[EventListener] = list(listeners)
        #: Queues each local event for other servers, in the transaction that persists it.
        self.outbox = outbox
        self.group_commit = GroupCommit(self, outbox)
        #: The timestamp of the last create event made here (see create_room_events).
        self._last_create_ts = 0

    # ------------------------------------------------------------- reading (RoomReader)

    async def get_events(self, event_ids: Iterable[str]) -> dict[str, StoredEvent]:
        return await self.reader.get_events(event_ids)

    async def get_event(self, event_id: str) -> StoredEvent | None:
        return await self.reader.get_event(event_id)

    def add_room(self, room: RoomCache) -> None:
        """Start caching a room this node has just joined over federation."""
        self.reader.add_room(room)

    async def room(self, room_id: str) -> RoomCache | None:
        return await self.reader.room(room_id)

    async def require_room(self, room_id: str) -> RoomCache:
        return await self.reader.require_room(room_id)

    async def state_event(
        self, room_id: str, event_type: str, state_key: str
    ) -> StoredEvent | None:
        return await self.reader.state_event(room_id, event_type, state_key)

    async def state_content(
        self, room: RoomCache, event_type: str, state_key: str = ""
    ) -> dict[str, Any]:
        return await self.reader.state_content(room, event_type, state_key)

    async def current_state_events(self, room_id: str) -> list[StoredEvent]:
        return await self.reader.current_state_events(room_id)

    async def state_at(self, event: StoredEvent) -> dict[StateKey, str]:
        return await self.reader.state_at(event)

    def membership(self, room: RoomCache, user_id: str) -> str | None:
        return room.members.get(user_id)

    async def require_joined(self, room_id: str, user_id: str) -> RoomCache:
        return await self.reader.require_joined(room_id, user_id)

    async def joined_rooms(self, user_id: str) -> list[str]:
        return await self.reader.joined_rooms(user_id)

    # ------------------------------------------------------------- sending

    async def send(
        self,
        room_id: str,
        sender: str,
        event_type: str,
        content: dict[str, Any],
        *,
        state_key: str | None = None,
        txn: tuple[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
        countersign: Callable[[RoomCache, str, dict[str, Any]], Awaitable[dict[str, Any]]]
        | None = None,
    ) -> str:
        """Create, authorize and persist a local event; returns its event ID.

        ``txn`` is ``(device_id, txn_id)``: the same transaction from the same device gets
        the same event ID back and creates nothing new.
        """
        room = await self.reader.require_room(room_id)
        if self.policy is not None:
            await self.policy.check_event(
                ProposedEvent(room_id, sender, event_type, state_key, content)
            )
        if state_key is None and countersign is None and event_type != "m.room.redaction":
            # Duplicate transactions are found by the group commit itself.
            return await self.group_commit.send(
                room, Pending(sender, event_type, content, txn, extra)
            )
        if txn is not None:
            async with self.db.read() as conn:
                existing = await txn_store.get_txn_event(conn, sender, txn[0], txn[1])
            if existing is not None:
                return existing
        async with room.lock:
            if txn is not None:  # a retry may have raced us to the lock
                async with self.db.read() as conn:
                    existing = await txn_store.get_txn_event(conn, sender, txn[0], txn[1])
                if existing is not None:
                    return existing
            event_id, pdu = await self.build(room, sender, event_type, content, state_key, extra)
            if countersign is not None:
                # Another server must sign it first (an invite of one of its users).
                pdu = await countersign(room, event_id, pdu)
            stored = await self._persist(room, event_id, pdu, txn=(sender, *txn) if txn else None)
        self.after_persist(room, stored)
        return event_id

    async def send_after(
        self,
        room_id: str,
        sender: str,
        event_type: str,
        content: dict[str, Any],
        state_key: str,
        before: Callable[[str], Awaitable[None]],
    ) -> str:
        """A state event whose ID something else needs first: built and authorized under
        the room's lock, then ``before(event_id)`` runs (still under the lock, so the
        event's prev events stay the room's latest), then it is persisted. Nothing is
        persisted when ``before`` raises. (A room upgrade's tombstone, which the new
        room's create event names.)"""
        room = await self.reader.require_room(room_id)
        if self.policy is not None:
            await self.policy.check_event(
                ProposedEvent(room_id, sender, event_type, state_key, content)
            )
        async with room.lock:
            event_id, pdu = await self.build(room, sender, event_type, content, state_key, None)
            await before(event_id)
            stored = await self._persist(room, event_id, pdu)
        self.after_persist(room, stored)
        return event_id

    # ------------------------------------------------------------- hooks

    async def prepare_hooks(
        self, room: RoomCache, events: Sequence[StoredEvent]
    ) -> list[HookWrite]:
        writes = [await hook.prepare(room, events) for hook in self.hooks]
        return [w for w in writes if w is not None]

    async def run_hooks(self, conn: Any, room: RoomCache, events: Sequence[StoredEvent]) -> None:
        """Inside the transaction that stores ``events``: prepare and write every hook."""
        writes = await self.prepare_hooks(room, events)
        await driver.run(conn, [s for w in writes for s in w.statements])
        await finish_hooks(conn, writes)

    async def auth_for(
        self, room: RoomCache, proto: dict[str, Any]
    ) -> tuple[list[str], dict[StateKey, dict[str, Any]]]:
        """The auth event IDs for a new event and the auth state to check it against."""
        wanted = engine_auth.auth_types_for_event(proto, room.version)
        keys = [k for k in wanted if k in room.state]
        if room.version.room_id_is_create_hash and ("m.room.create", "") in room.state:
            keys.append(("m.room.create", ""))
        found = await self.reader.get_events(room.state[k] for k in keys)
        auth_state = {k: found[room.state[k]].pdu for k in keys if room.state[k] in found}
        auth_ids = [
            room.state[k]
            for k in wanted
            if k in room.state
            and not (room.version.room_id_is_create_hash and k == ("m.room.create", ""))
        ]
        return sorted(set(auth_ids)), auth_state

    async def build(
        self,
        room: RoomCache,
        sender: str,
        event_type: str,
        content: dict[str, Any],
        state_key: str | None,
        extra: Mapping[str, Any] | None,
        *,
        prev_events: list[str] | None = None,
        depth: int | None = None,
    ) -> tuple[str, dict[str, Any]]:
        proto: dict[str, Any] = {"type": event_type, "sender": sender, "content": content}
        if state_key is not None:
            proto["state_key"] = state_key
        auth_ids, auth_state = await self.auth_for(room, proto)
        try:
            event_id, pdu = engine_events.build_event(
                room.version,
                event_type=event_type,
                sender=sender,
                content=content,
                room_id=room.room_id,
                prev_events=prev_events
                if prev_events is not None
                else room.extremities[-MAX_PREV_EVENTS:],
                auth_events=auth_ids,
                depth=depth if depth is not None else room.depth + 1,
                origin_server_ts=self.clock.now_ms(),
                server_name=self.server_name,
                key=self.signing_key,
                state_key=state_key,
                extra=extra,
            )
        except FederationError as e:
            raise MatrixError(400, "M_BAD_JSON", str(e)) from e
        try:
            engine_auth.check(pdu, auth_state, room.version)
        except AuthError as e:
            raise forbidden(e.reason) from e
        return event_id, pdu

    async def _persist(
        self,
        room: RoomCache,
        event_id: str,
        pdu: dict[str, Any],
        *,
        txn: tuple[str, str, str] | None = None,
        new_room: tuple[str, str, bool] | None = None,
    ) -> StoredEvent:
        state_key = pdu.get("state_key")
        key = (pdu["type"], state_key) if isinstance(state_key, str) else None
        try:
            async with self.db.write() as conn:
                with self.db.stream.allocate() as position:
                    if new_room is not None:
                        version, creator, is_public = new_room
                        await room_store.insert_room(
                            conn, room.room_id, version, creator, is_public, self.clock.now_ms()
                        )
                    group = room.state_group
                    if key is not None:
                        group = await self._write_state(conn, room, key, event_id, pdu, position)
                    stored = StoredEvent(event_id, position, room.room_id, pdu, group)
                    await self._write_event(conn, room, stored, txn)
        except BaseException:
            self.state_store.forget_cache()
            raise
        self._committed(room, key, stored)
        return stored

    async def _write_state(
        self, conn: Any, room: RoomCache, key: StateKey, event_id: str, pdu: dict[str, Any], at: int
    ) -> int:
        """A state event's new state group (returned), current state and membership, at stream
        position ``at``."""
        group = await self.state_store.create_group(
            conn, room.room_id, room.state_group, {key: event_id}
        )
        await room_store.update_current_state(conn, room.room_id, {key: event_id}, at)
        if pdu["type"] == "m.room.member":
            membership = pdu["content"]["membership"]
            await room_store.set_membership(conn, room.room_id, key[1], membership, event_id, at)
        return group

    async def _write_event(
        self, conn: Any, room: RoomCache, stored: StoredEvent, txn: tuple[str, str, str] | None
    ) -> None:
        """The event, the forward extremities, the transaction ID, the outbox, the redaction
        it makes and the hooks, in that order."""
        event_id, pdu = stored.event_id, stored.pdu
        await event_store.insert_event(
            conn,
            stream_ordering=stored.stream_ordering,
            event_id=event_id,
            room_id=room.room_id,
            pdu=pdu,
            state_group=stored.state_group,
        )
        await extremity_store.set_forward_extremities(
            conn, room.room_id, pdu["prev_events"], [event_id]
        )
        if txn is not None:
            await txn_store.insert_txn_event(conn, *txn, event_id, self.clock.now_ms())
        if self.outbox is not None:
            await self.outbox(conn, room, pdu)
        redacted = redacts(pdu, room)
        if redacted:
            await self.apply_redaction(conn, room, event_id, redacted)
        await self.run_hooks(conn, room, [stored])

    def _committed(self, room: RoomCache, key: StateKey | None, stored: StoredEvent) -> None:
        """Update the cache, only now that the transaction is committed."""
        pdu = stored.pdu
        if key is not None:
            room.state[key] = stored.event_id
            room.state_group = stored.state_group
            if pdu["type"] == "m.room.member":
                room.members[key[1]] = pdu["content"]["membership"]
        room.extremities = [e for e in room.extremities if e not in set(pdu["prev_events"])]
        room.extremities.append(stored.event_id)
        room.depth = max(room.depth, pdu["depth"])
        self.events.put(stored)

    async def apply_redaction(
        self, conn: Any, room: RoomCache, redaction_id: str, target_id: str
    ) -> None:
        found = await event_store.get_events(conn, [target_id])
        target = found.get(target_id)
        if target is None or target.room_id != room.room_id:
            return
        pruned = engine_events.redact(target.pdu, room.version)
        pruned["unsigned"] = {"redacted_because": redaction_id}
        await event_store.mark_redacted(conn, target_id, redaction_id, pruned)
        await search_store.forget_event(conn, target_id)
        self.events.invalidate(target_id)

    def after_persist(self, room: RoomCache, event: StoredEvent) -> None:
        users = set(room.interested())
        if event.type == "m.room.member" and event.state_key:
            users.add(event.state_key)
        self.notifier.notify(users)
        for listener in self.listeners:
            try:
                listener(room, event)
            except Exception:  # a listener must never break sending
                log.exception("event listener failed for %s", event.event_id)

    # ------------------------------------------------------------- creating rooms

    async def create_room_events(
        self,
        version_id: str,
        creator: str,
        creation_content: dict[str, Any],
        is_public: bool,
        then: list[tuple[str, str | None, dict[str, Any]]],
        creator_join: dict[str, Any] | None = None,
        room_id: str | None = None,
    ) -> str:
        """Create a room: its create event, the creator's join (``creator_join``, with
        their profile), then ``then`` in order. ``room_id``: the ID picked beforehand (room
        versions whose IDs are not their create event's hash)."""
        version = room_versions.get(version_id)
        content = dict(creation_content)
        content["room_version"] = version.identifier
        if version.create_has_creator:
            content["creator"] = creator
        proto_room = RoomCache("", version, {}, None, [], 0)
        if version.room_id_is_create_hash:
            room_id = None
        elif room_id is None:
            room_id = self.new_room_id()
        try:
            create_id, create = engine_events.build_event(
                version,
                event_type="m.room.create",
                sender=creator,
                content=content,
                room_id=room_id,
                prev_events=[],
                auth_events=[],
                depth=1,
                origin_server_ts=self._create_ts(),
                server_name=self.server_name,
                key=self.signing_key,
                state_key="",
            )
            engine_auth.check(create, {}, version)
        except AuthError as e:
            raise MatrixError(400, "M_BAD_JSON", f"invalid creation_content: {e.reason}") from e
        except FederationError as e:
            raise MatrixError(400, "M_BAD_JSON", f"invalid creation_content: {e}") from e
        room_id = room_id or engine_events.compute_room_id(create)
        proto_room.room_id = room_id
        if self.policy is not None:
            await self.policy.check_event(
                ProposedEvent(room_id, creator, "m.room.create", "", content)
            )
        stored = await self._persist(
            proto_room, create_id, create, new_room=(version.identifier, creator, is_public)
        )
        self.reader.add_room(proto_room)
        self.after_persist(proto_room, stored)
        join = creator_join or {"membership": "join"}
        await self.send(room_id, creator, "m.room.member", join, state_key=creator)
        for event_type, state_key, event_content in then:
            await self.send(room_id, creator, event_type, event_content, state_key=state_key)
        return room_id

    def _create_ts(self) -> int:
        """A create event's timestamp, later than every other made here: where the room ID
        is the create event's hash (room version 12), one user's rooms created in the same
        millisecond with the same content would otherwise be one room (Synapse shifts the
        timestamp on a collision)."""
        self._last_create_ts = max(self.clock.now_ms(), self._last_create_ts + 1)
        return self._last_create_ts

    def new_room_id(self) -> str:
        """A fresh room ID of this server (room versions before 12)."""
        return "!" + secrets.token_urlsafe(18) + ":" + self.server_name


def redacts(pdu: Mapping[str, Any], room: RoomCache) -> str | None:
    if pdu.get("type") != "m.room.redaction":
        return None
    value = (
        pdu.get("content", {}).get("redacts")
        if room.version.redacts_in_content
        else pdu.get("redacts")
    )
    return value if isinstance(value, str) else None
