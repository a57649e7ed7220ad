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
from homeserver.common.errors import MatrixError, forbidden, not_found
from homeserver.common.notifier import Notifier
from homeserver.rooms.cache import EventCache, RoomCache, StateKey
from homeserver.rooms.groupcommit import MAX_PREV_EVENTS, GroupCommit, Pending
from homeserver.rooms.hooks import EventHook, HookWrite, finish_hooks
from homeserver.storage import driver
from homeserver.storage import events as event_store
from homeserver.storage import rooms as room_store
from homeserver.storage.database import Database
from homeserver.storage.events import StoredEvent
from homeserver.storage.state import StateStore

log = logging.getLogger(__name__)


class RoomService:
    def __init__(
        self,
        db: Database,
        state_store: StateStore,
        notifier: Notifier,
        clock: Clock,
        server_name: str,
        signing_key: SigningKey,
    ) -> None:
        self.db = db
        self.state_store = state_store
        self.notifier = notifier
        self.clock = clock
        self.server_name = server_name
        self.signing_key = signing_key
        self.events = EventCache()
        self._rooms: dict[str, RoomCache] = {}
        #: Called with each newly persisted event (federation sender, metrics...).
        self.listeners: list[Any] = []
        #: Written inside the transaction that stores new events, local or received, after
        #: the events (push actions).
        self.hooks: list[EventHook] = []
        #: Called inside the transaction that persists a local event, to queue it for other
        #: servers in the same transaction (so a crash cannot lose it): (conn, room, pdu).
        self.outbox: Callable[[Any, RoomCache, dict[str, Any]], Awaitable[None]] | None = None
        self.group_commit = GroupCommit(self)

    # ------------------------------------------------------------- reading

    async def get_events(self, event_ids: Iterable[str]) -> dict[str, StoredEvent]:
        found: dict[str, StoredEvent] = {}
        missing: list[str] = []
        for event_id in event_ids:
            cached = self.events.get(event_id)
            if cached is not None:
                found[event_id] = cached
            else:
                missing.append(event_id)
        if missing:
            async with self.db.read() as conn:
                loaded = await event_store.get_events(conn, missing)
            for event in loaded.values():
                self.events.put(event)
            found.update(loaded)
        return found

    async def get_event(self, event_id: str) -> StoredEvent | None:
        return (await self.get_events([event_id])).get(event_id)

    async def room(self, room_id: str) -> RoomCache | None:
        """The cached current state of a room this node knows, or None."""
        cached = self._rooms.get(room_id)
        if cached is not None:
            return cached
        async with self.db.read() as conn:
            room = await room_store.get_room(conn, room_id)
            if room is None:
                return None
            state = await room_store.get_current_state(conn, room_id)
            extremities = await event_store.get_forward_extremities(conn, room_id)
            extremity_events = await event_store.get_events(conn, extremities)
            members = await room_store.members_of_room(conn, room_id)
        depth = max((e.pdu["depth"] for e in extremity_events.values()), default=0)
        groups = [e.state_group for e in extremity_events.values() if e.state_group is not None]
        cache = RoomCache(
            room_id=room_id,
            version=room_versions.get(room.room_version),
            state=state,
            state_group=max(groups) if groups else None,
            extremities=extremities,
            depth=depth,
            members={m.user_id: m.membership for m in members},
        )
        self._rooms.setdefault(room_id, cache)
        return self._rooms[room_id]

    async def require_room(self, room_id: str) -> RoomCache:
        room = await self.room(room_id)
        if room is None:
            raise not_found(f"Unknown room {room_id}")
        return room

    async def state_event(
        self, room_id: str, event_type: str, state_key: str
    ) -> StoredEvent | None:
        room = await self.require_room(room_id)
        event_id = room.state.get((event_type, state_key))
        return await self.get_event(event_id) if event_id else None

    async def state_content(
        self, room: RoomCache, event_type: str, state_key: str = ""
    ) -> dict[str, Any]:
        event_id = room.state.get((event_type, state_key))
        if event_id is None:
            return {}
        event = await self.get_event(event_id)
        content = event.pdu.get("content") if event else None
        return content if isinstance(content, dict) else {}

    async def current_state_events(self, room_id: str) -> list[StoredEvent]:
        room = await self.require_room(room_id)
        found = await self.get_events(room.state.values())
        return [found[e] for e in room.state.values() if e in found]

    async def state_at(self, event: StoredEvent) -> dict[StateKey, str]:
        async with self.db.read() as conn:
            return await self.state_store.get_state(conn, event.state_group)

    def membership(self, room: RoomCache, user_id: str) -> str | None:
        return room.members.get(user_id)

    async def require_joined(self, room_id: str, user_id: str) -> RoomCache:
        room = await self.room(room_id)
        if room is None or room.members.get(user_id) != "join":
            raise forbidden(f"User {user_id} not in room {room_id}")
        return room

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
        room = await self.require_room(room_id)
        if state_key is None and countersign is None and event_type != "m.room.redaction":
            # Duplicate transactions are found by the group commit itself.
            return await self.group_commit.send(
                room, Pending(sender, event_type, content, txn, extra)
            )
        if txn is not None:
            async with self.db.read() as conn:
                existing = await event_store.get_txn_event(conn, sender, txn[0], txn[1])
            if existing is not None:
                return existing
        async with room.lock:
            if txn is not None:  # a retry may have raced us to the lock
                async with self.db.read() as conn:
                    existing = await event_store.get_txn_event(conn, sender, txn[0], txn[1])
                if existing is not None:
                    return existing
            event_id, pdu = await self.build(room, sender, event_type, content, state_key, extra)
            if countersign is not None:
                # Another server must sign it first (an invite of one of its users).
                pdu = await countersign(room, event_id, pdu)
            stored = await self._persist(room, event_id, pdu, txn=(sender, *txn) if txn else None)
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
        found = await self.get_events(room.state[k] for k in keys)
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
                        group = await self.state_store.create_group(
                            conn, room.room_id, room.state_group, {key: event_id}
                        )
                        await room_store.update_current_state(
                            conn, room.room_id, {key: event_id}, position
                        )
                        if pdu["type"] == "m.room.member":
                            await room_store.set_membership(
                                conn, room.room_id, key[1], pdu["content"]["membership"],
                                event_id, position,
                            )  # fmt: skip
                    await event_store.insert_event(
                        conn,
                        stream_ordering=position,
                        event_id=event_id,
                        room_id=room.room_id,
                        pdu=pdu,
                        state_group=group,
                    )
                    await event_store.set_forward_extremities(
                        conn, room.room_id, pdu["prev_events"], [event_id]
                    )
                    if txn is not None:
                        await event_store.insert_txn_event(
                            conn, *txn, event_id, self.clock.now_ms()
                        )
                    if self.outbox is not None:
                        await self.outbox(conn, room, pdu)
                    redacts = _redacts(pdu, room)
                    if redacts:
                        await self._apply_redaction(conn, room, event_id, redacts)
                    stored = StoredEvent(event_id, position, room.room_id, pdu, group)
                    await self.run_hooks(conn, room, [stored])
        except BaseException:
            self.state_store.forget_cache()
            raise
        # Update the cache only now that the transaction is committed.
        if key is not None:
            room.state[key] = event_id
            room.state_group = group
            if pdu["type"] == "m.room.member":
                room.members[key[1]] = pdu["content"]["membership"]
        room.extremities = [e for e in room.extremities if e not in set(pdu["prev_events"])]
        room.extremities.append(event_id)
        room.depth = max(room.depth, pdu["depth"])
        self.events.put(stored)
        return stored

    # ------------------------------------------------------------- events from other servers

    def add_room(self, room: RoomCache) -> None:
        """Start caching a room this node has just joined over federation."""
        self._rooms[room.room_id] = room

    async def store_remote_invite(
        self,
        room_id: str,
        version: str,
        event_id: str,
        pdu: dict[str, Any],
        stripped_state: list[dict[str, Any]],
    ) -> None:
        """An invite of a local user into a room this node is not in (an outlier)."""
        target = pdu["state_key"]
        stored_pdu = {
            **pdu,
            "unsigned": {"invite_room_state": stripped_state, "room_version": version},
        }
        if await self.get_event(event_id) is None:
            async with self.db.write() as conn:
                with self.db.stream.allocate() as position:
                    await event_store.insert_event(
                        conn, stream_ordering=position, event_id=event_id, room_id=room_id,
                        pdu=stored_pdu, state_group=None, outlier=True,
                    )  # fmt: skip
                    if (
                        await room_store.get_membership(conn, room_id, target)
                    ) is None or room_id not in self._rooms:
                        await room_store.set_membership(
                            conn, room_id, target, "invite", event_id, position
                        )
        room = self._rooms.get(room_id)
        if room is not None and room.members.get(target) not in ("join",):
            room.members[target] = "invite"
        self.notifier.notify([target])

    async def forget_remote_invite(self, room_id: str, user_id: str) -> None:
        """Mark a remote invite as rejected locally when the inviting server cannot be told."""
        async with self.db.write() as conn:
            membership = await room_store.get_membership(conn, room_id, user_id)
            if membership is None:
                return
            with self.db.stream.allocate() as position:
                await room_store.set_membership(
                    conn, room_id, user_id, "leave", membership.event_id, position
                )
        self.notifier.notify([user_id])

    async def store_remote_leave(
        self, room_id: str, user_id: str, event_id: str, pdu: dict[str, Any]
    ) -> None:
        """A local user's leave (invite rejection) of a room this node is not in."""
        async with self.db.write() as conn:
            with self.db.stream.allocate() as position:
                await event_store.insert_event(
                    conn, stream_ordering=position, event_id=event_id, room_id=room_id,
                    pdu=pdu, state_group=None, outlier=True,
                )  # fmt: skip
                await room_store.set_membership(conn, room_id, user_id, "leave", event_id, position)
        self.notifier.notify([user_id])

    async def _apply_redaction(
        self, conn: Any, room: RoomCache, redaction_id: str, target_id: str
    ) -> None:
        found = await event_store.get_events(conn, [target_id])
        target = found.get(target_id)
        if target is None or target.room_id != room.room_id:
            return
        pruned = engine_events.redact(target.pdu, room.version)
        pruned["unsigned"] = {"redacted_because": redaction_id}
        await event_store.mark_redacted(conn, target_id, redaction_id, pruned)
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
    ) -> str:
        """Create a room: its create event, the creator's join, then ``then`` in order."""
        version = room_versions.get(version_id)
        content = dict(creation_content)
        content["room_version"] = version.identifier
        if version.create_has_creator:
            content["creator"] = creator
        proto_room = RoomCache("", version, {}, None, [], 0)
        if version.room_id_is_create_hash:
            room_id = None
        else:
            room_id = "!" + secrets.token_urlsafe(18) + ":" + self.server_name
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
                origin_server_ts=self.clock.now_ms(),
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
        stored = await self._persist(
            proto_room, create_id, create, new_room=(version.identifier, creator, is_public)
        )
        self._rooms[room_id] = proto_room
        self.after_persist(proto_room, stored)
        await self.send(
            room_id, creator, "m.room.member", {"membership": "join"}, state_key=creator
        )
        for event_type, state_key, event_content in then:
            await self.send(room_id, creator, event_type, event_content, state_key=state_key)
        return room_id


def _redacts(pdu: Mapping[str, Any], room: RoomCache) -> str | None:
    if pdu.get("type") != "m.room.redaction":
        return None
    value = (
        pdu.get("content", {}).get("redacts")
        if room.version.redacts_in_content
        else pdu.get("redacts")
    )
    return value if isinstance(value, str) else None
