"""Presence: online, unavailable (idle) or offline, a status message, when last active.

Kept as Synapse keeps it: the state of each user the node has touched lives in memory; a
change clients are told about (state, status message, ``currently_active``, a jump of
``last_active_ts`` while not currently active) is written to the ``presence`` table at a
new stream position, wakes the local users who share a room with the user and, for a local
user, goes to the servers of those rooms as an ``m.presence`` EDU.  A sync or an activity
that changes nothing of that writes nothing.

Timers as Synapse's (its defaults, configurable as in its ``presence`` section): a local
user online with no activity for ``idle_timeout`` becomes unavailable; one who has not
synced for ``sync_online_timeout`` (and is not syncing) goes offline; ``currently_active``
holds for ``last_active_granularity`` after the last activity; a remote user not heard of
for 30 minutes goes offline, and local users' presence is sent again every 25 minutes.

With presence turned off (``presence.enabled: false``, as large servers do) updates are
accepted and ignored, /sync has none, no EDU is sent or taken.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any, Protocol

from federation.identifiers import domain_of
from homeserver.accounts.service import Requester
from homeserver.common.clock import Clock
from homeserver.common.errors import MatrixError
from homeserver.common.notifier import Notifier
from homeserver.config.model import PresenceSettings
from homeserver.rooms.cache import RoomCache
from homeserver.rooms.reader import RoomReader
from homeserver.storage import presence as store
from homeserver.storage.events import StoredEvent
from homeserver.storage.presence import PresenceRow
from homeserver.sync.presence_state import (
    MAX_STATUS_MSG,
    STATES,
    UserPresence,
    from_row,
    read_remote_entry,
    should_notify,
    timed_out,
)
from homeserver.sync.presence_sync import presence_events

log = logging.getLogger(__name__)

#: How often local users' presence is sent again to other servers (Synapse's).
FEDERATION_PING_INTERVAL_MS = 25 * 60 * 1000
#: How often the timers are checked.
TICK_S = 5.0
#: How long after a server's first join its users are told the room's presence.
JOIN_GRACE_S = 2.0


class PresenceListener(Protocol):
    """Told of a local user's presence to send to other servers: (user ID, the EDU's
    entry, the IDs of the rooms the user is joined to)."""

    def __call__(self, user_id: str, entry: dict[str, Any], room_ids: Sequence[str], /) -> None: ...


class PresenceSender(Protocol):
    """Sends presence entries to these servers (a server that just joined a room)."""

    def __call__(self, entries: list[dict[str, Any]], destinations: set[str], /) -> None: ...


def _ignore(user_id: str, entry: dict[str, Any], room_ids: Sequence[str]) -> None:
    return None


def _send_nowhere(entries: list[dict[str, Any]], destinations: set[str]) -> None:
    return None


class PresenceService:
    def __init__(
        self,
        rooms: RoomReader,
        notifier: Notifier,
        clock: Clock,
        server_name: str,
        settings: PresenceSettings,
        on_local_change: PresenceListener = _ignore,
        send_to: PresenceSender = _send_nowhere,
    ) -> None:
        self.rooms = rooms
        self.db = rooms.db
        self.notifier = notifier
        self.clock = clock
        self.server_name = server_name
        self.settings = settings
        self.on_local_change = on_local_change
        self.send_to = send_to
        self._states: dict[str, UserPresence] = {}
        #: Local user ID -> syncs in progress.
        self._syncing: dict[str, int] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._timer: asyncio.Task[None] | None = None
        #: Presence waiting to go to servers that just joined a room.
        self._later: set[asyncio.TimerHandle] = set()

    @property
    def enabled(self) -> bool:
        return self.settings.enabled

    # ------------------------------------------------------------------ reading

    async def get(self, observer: str, user_id: str) -> dict[str, Any]:
        """GET /presence/{userId}/status: one's own, or that of a user sharing a room."""
        if not self.enabled:
            return {"presence": "offline"}
        if observer != user_id and not await self.visible(observer, user_id):
            raise MatrixError(403, "M_FORBIDDEN", "You are not allowed to see their presence.")
        return (await self._state(user_id)).content(self.clock.now_ms())

    async def visible(self, observer: str, observed: str) -> bool:
        """Synapse's rule: one sees the presence of the users one shares a room with."""
        mine = set(await self.rooms.joined_rooms(observer))
        return bool(mine) and not mine.isdisjoint(await self.rooms.joined_rooms(observed))

    async def _state(self, user_id: str) -> UserPresence:
        found = self._states.get(user_id)
        if found is not None:
            return found
        async with self.db.read() as conn:
            rows = await store.presence_of(conn, [user_id])
        found = self._states.get(user_id)  # another task may have loaded it meanwhile
        if found is None:
            found = from_row(rows[0]) if rows else UserPresence(user_id)
            self._states[user_id] = found
        return found

    # ------------------------------------------------------------------ local changes

    async def set_state(
        self,
        user_id: str,
        presence: str,
        status_msg: str | None = None,
        *,
        is_sync: bool = False,
    ) -> None:
        """A local user's new presence (PUT /presence, or ``set_presence`` of a /sync)."""
        if presence not in STATES:
            raise MatrixError(400, "M_INVALID_PARAM", f"Invalid presence state {presence!r}")
        if status_msg is not None and len(status_msg) > MAX_STATUS_MSG:
            raise MatrixError(400, "M_INVALID_PARAM", "status_msg is too long")
        if not self.enabled:
            return
        async with self._lock(user_id):
            old = await self._state(user_id)
            now = self.clock.now_ms()
            new = dataclasses.replace(old, state=presence)
            if presence == "online":
                new.last_active_ts = now
            if is_sync:
                new.last_user_sync_ts = now
            else:
                new.status_msg = status_msg  # syncs keep the status message
            await self._update(old, new, now)

    async def bump_active(self, user_id: str) -> None:
        """The user did something (sent an event...): online again if they were idle.

        An offline user (a bot, a script: nothing syncing) stays as they are, with no write;
        Synapse would store their new last activity (and wake the room's members)."""
        if not self.enabled:
            return
        async with self._lock(user_id):
            old = await self._state(user_id)
            if old.state == "offline":
                return
            now = self.clock.now_ms()
            new = dataclasses.replace(old, last_active_ts=now)
            if old.state == "unavailable":
                new.state = "online"
            await self._update(old, new, now)

    @contextlib.asynccontextmanager
    async def syncing(self, user_id: str, set_presence: str | None) -> AsyncIterator[None]:
        """Around a /sync: ``set_presence`` (online by default) while it runs; a sync with
        ``offline`` leaves presence alone, as in Synapse."""
        presence = set_presence or "online"
        if presence not in STATES:
            raise MatrixError(400, "M_INVALID_PARAM", f"Invalid set_presence {presence!r}")
        if not self.enabled or presence == "offline":
            yield
            return
        await self.set_state(user_id, presence, is_sync=True)
        self._syncing[user_id] = self._syncing.get(user_id, 0) + 1
        try:
            yield
        finally:
            left = self._syncing[user_id] - 1
            if left:
                self._syncing[user_id] = left
            else:
                del self._syncing[user_id]
            state = self._states.get(user_id)
            if state is not None:
                state.last_user_sync_ts = self.clock.now_ms()

    # ------------------------------------------------------------------ remote changes

    async def on_edu(self, origin: str, content: dict[str, Any]) -> None:
        """An ``m.presence`` EDU: each entry for a user of ``origin`` who shares a room
        with this node's users."""
        if not self.enabled:
            return
        entries = content.get("push")
        if not isinstance(entries, list):
            log.info("ignored a malformed m.presence EDU from %s", origin)
            return
        for entry in entries[:1000]:
            reason = await self._remote_entry(origin, entry)
            if reason:
                log.info("ignored a presence update from %s: %s", origin, reason)

    async def _remote_entry(self, origin: str, entry: Any) -> str | None:
        remote = read_remote_entry(origin, entry)
        if isinstance(remote, str):
            return remote
        if not await self.rooms.joined_rooms(remote.user_id):
            return f"{remote.user_id} shares no room with this server"
        async with self._lock(remote.user_id):
            old = await self._state(remote.user_id)
            now = self.clock.now_ms()
            await self._update(old, remote.applied_to(old, now), now)
        return None

    # ------------------------------------------------------------------ changes

    def _lock(self, user_id: str) -> asyncio.Lock:
        return self._locks.setdefault(user_id, asyncio.Lock())

    async def _update(self, old: UserPresence, new: UserPresence, now: int) -> None:
        """Keep ``new``; persist it and tell whom it concerns when it is worth telling."""
        local = domain_of(new.user_id) == self.server_name
        granularity = self.settings.last_active_granularity_ms
        if local and new.state == "online":
            new.currently_active = now - new.last_active_ts < granularity
        elif local:
            new.currently_active = False
        self._states[new.user_id] = new
        self._start_timer()
        ping = (
            local
            and new.state != "offline"
            and (now - new.last_federation_ts > FEDERATION_PING_INTERVAL_MS)
        )
        if should_notify(old, new, granularity):
            await self._persist(new)
            await self._tell(new, now, local)
        elif ping:
            await self._tell(new, now, local, clients=False)

    async def _persist(self, state: UserPresence) -> None:
        async with self.db.write() as conn:
            with self.db.stream.allocate() as position:
                await store.set_presence(
                    conn,
                    PresenceRow(
                        state.user_id, state.state, state.status_msg, state.last_active_ts,
                        state.currently_active, position,
                    ),
                )  # fmt: skip

    async def _tell(self, state: UserPresence, now: int, local: bool, clients: bool = True) -> None:
        room_ids = await self.rooms.joined_rooms(state.user_id)
        if clients:
            users = {state.user_id} if local else set()
            for room_id in room_ids:
                room = await self.rooms.room(room_id)
                if room is not None:
                    users.update(u for u in room.joined() if domain_of(u) == self.server_name)
            self.notifier.notify(users)
        if local and room_ids:
            state.last_federation_ts = now
            entry = {"user_id": state.user_id, **state.content(now)}
            self.on_local_change(state.user_id, entry, room_ids)

    def on_event(self, room: RoomCache, event: StoredEvent) -> None:
        """Room listener: a server whose first user joins a room gets the presence of the
        room's local users who are not offline; a local user who joins a room has theirs
        sent to the room's servers (the others' comes with their next change or ping)."""
        if not self.enabled or event.type != "m.room.member" or not event.state_key:
            return
        if event.pdu.get("content", {}).get("membership") != "join":
            return
        joiner = event.state_key
        server = domain_of(joiner)
        now = self.clock.now_ms()
        if server == self.server_name:
            state = self._states.get(joiner)
            if state is not None and state.state != "offline":
                entry = {"user_id": joiner, **state.content(now)}
                self.on_local_change(joiner, entry, [room.room_id])
            return
        joined = room.joined()
        if any(domain_of(u) == server for u in joined if u != joiner):
            return  # the server was in the room already
        entries = [
            {"user_id": u, **state.content(now)}
            for u in joined
            if domain_of(u) == self.server_name
            and (state := self._states.get(u)) is not None
            and state.state != "offline"
        ]
        if entries:
            # After a moment: the joining server takes presence only for users it shares a
            # room with, which it does once it has processed the join's answer.
            handle = asyncio.get_running_loop().call_later(
                JOIN_GRACE_S, self._send_later, entries, server
            )
            self._later.add(handle)

    def _send_later(self, entries: list[dict[str, Any]], server: str) -> None:
        self._later = {h for h in self._later if not h.cancelled() and h.when() > _now()}
        self.send_to(entries, {server})

    # ------------------------------------------------------------------ timers

    def _start_timer(self) -> None:
        if self._timer is None or self._timer.done():
            self._timer = asyncio.get_running_loop().create_task(self._run_timers())

    async def _run_timers(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            try:
                await self.check_timeouts()
            except Exception:
                log.exception("presence timers failed")

    async def check_timeouts(self) -> None:
        """Apply the timers to every user not offline (Synapse's handle_timeout)."""
        for user_id in [u for u, s in self._states.items() if s.state != "offline"]:
            async with self._lock(user_id):
                old = self._states[user_id]
                now = self.clock.now_ms()
                new = self._timed_out(old, now)
                if new is not None:
                    await self._update(old, new, now)
        # Users gone offline are read again from the database when next asked about.
        for user_id in [u for u, s in self._states.items() if s.state == "offline"]:
            lock = self._locks.get(user_id)
            if user_id not in self._syncing and (lock is None or not lock.locked()):
                self._states.pop(user_id, None)
                self._locks.pop(user_id, None)

    def _timed_out(self, old: UserPresence, now: int) -> UserPresence | None:
        local = domain_of(old.user_id) == self.server_name
        return timed_out(old, now, self.settings, local=local, syncing=old.user_id in self._syncing)

    # ------------------------------------------------------------------ /sync

    async def sync_extension(
        self,
        requester: Requester,
        since: int | None,
        upto: int,
        response: dict[str, Any],
        joined_rooms: Sequence[str],
    ) -> None:
        """/sync's ``presence`` section (:func:`.presence_sync.presence_events`)."""
        if not self.enabled:
            return
        events = await presence_events(
            self.db, self.rooms, self._states, self.clock, requester.user_id, since, upto,
            joined_rooms,
        )  # fmt: skip
        if events is not None:
            response["presence"] = {"events": events}

    def close(self) -> None:
        for handle in self._later:
            handle.cancel()
        self._later.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def _now() -> float:
    return asyncio.get_running_loop().time()
