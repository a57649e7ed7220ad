"""Connections and their positions (``pos``), kept in the database so that a restart of the
node keeps them valid (as Synapse does since 1.114).

A connection is (user, device, ``conn_id``).  Each position it was given records which
rooms it was sent and with which config: a room is *live* (sent up to the position's
stream token), *previously* sent (up to an older stream position, with news since), or
never sent (absent).  The client sends back the position of the last response it got;
the others are then forgotten (as Synapse does), and a request without ``pos`` starts the
connection over.  A position unknown, not the requester's, or unused for a week is
``M_UNKNOWN_POS``; a stream token ahead of the node's is brought back to it (as Synapse).

A connection's latest position is kept in memory and written to the database just after
the response (write-behind): each connection's writes in order, a request for a position
whose write is still under way served from memory (or after the write), and every pending
write finished before the node stops (:meth:`ConnectionStore.flush`), so a restart keeps
them.  Only a crash in the few milliseconds between a response and its write loses that
position: the phone's next request is then ``M_UNKNOWN_POS`` and it starts over.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections import OrderedDict
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any

from homeserver.accounts.service import Requester
from homeserver.common.clock import Clock
from homeserver.common.errors import MatrixError
from homeserver.storage import sliding_sync as store
from homeserver.storage.database import Database
from homeserver.sync.params import SyncToken
from homeserver.sync.sliding.request import RoomConfig

log = logging.getLogger(__name__)

#: Positions unused for this long are forgotten (Synapse's CONNECTION_EXPIRY).
EXPIRY_MS = 7 * 24 * 3600 * 1000
#: Positions are drawn from 1 to this (integers exact in JavaScript).
_POSITIONS = 2**53 - 1
#: last_used_ts is written at most this often.
_TOUCH_MS = 3600 * 1000


def unknown_pos() -> MatrixError:
    return MatrixError(400, "M_UNKNOWN_POS", "Unknown position")


@dataclass(frozen=True)
class Pos:
    """A ``pos``: the connection's position and the stream token the response reached."""

    position: int
    token: SyncToken

    def __str__(self) -> str:
        return f"{self.position}/{self.token}"

    @classmethod
    def parse(cls, text: str) -> Pos:
        # A pos that is not one at all is 400 M_UNKNOWN "Invalid stream token", as
        # Synapse answers it; a well-formed one this node does not know is M_UNKNOWN_POS.
        head, _, tail = text.partition("/")
        try:
            if not (head.isascii() and head.isdigit() and len(head) <= 18) or not tail:
                raise ValueError(text)
            return cls(int(head), SyncToken.parse(tail))
        except (ValueError, MatrixError):
            raise MatrixError(400, "M_UNKNOWN", "Invalid stream token") from None


#: A room's status on a connection: absent (never sent), None (live: sent up to the
#: position's stream token), or the stream position it was sent up to (previously).
RoomStatuses = dict[str, int | None]


def record_sent(statuses: RoomStatuses, room_ids: Iterable[str]) -> None:
    for room_id in room_ids:
        statuses[room_id] = None


def record_unsent(statuses: RoomStatuses, room_ids: Iterable[str], since: int) -> None:
    """Rooms live until ``since`` that were not sent though something came after it."""
    for room_id in room_ids:
        if room_id in statuses and statuses[room_id] is None:
            statuses[room_id] = since


@dataclass
class ConnectionState:
    """What a connection was sent: the rooms (and the config each was last sent with),
    and, apart, each room's account data and receipts (Synapse tracks those apart too)."""

    rooms: RoomStatuses = field(default_factory=dict)
    configs: dict[str, RoomConfig] = field(default_factory=dict)
    account_data: RoomStatuses = field(default_factory=dict)
    receipts: RoomStatuses = field(default_factory=dict)
    #: room ID -> the members sent for ``$LAZY`` (Synapse's lazy members cache).
    lazy: dict[str, list[str]] = field(default_factory=dict)

    def copy(self) -> ConnectionState:
        return ConnectionState(
            dict(self.rooms),
            dict(self.configs),
            dict(self.account_data),
            dict(self.receipts),
            dict(self.lazy),
        )

    def to_json(self) -> str:
        return json.dumps(
            {
                "rooms": self.rooms,
                "configs": {r: c.to_json() for r, c in self.configs.items()},
                "account_data": self.account_data,
                "receipts": self.receipts,
                "lazy": self.lazy,
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> ConnectionState:
        data = json.loads(text)

        def statuses(key: str) -> RoomStatuses:
            found = data.get(key) or {}
            return {str(r): (None if s is None else int(s)) for r, s in found.items()}

        return cls(
            statuses("rooms"),
            {str(r): RoomConfig.from_json(c) for r, c in data["configs"].items()},
            statuses("account_data"),
            statuses("receipts"),
            {str(r): [str(u) for u in users] for r, users in (data.get("lazy") or {}).items()},
        )


@dataclass
class _Current:
    """A connection's position as the database has it (cached to spare reads), and
    whether it is its only one (others are deleted when it is first used)."""

    position: int
    state: ConnectionState
    last_used_ts: int
    alone: bool


class ConnectionStore:
    def __init__(self, db: Database, clock: Clock, cache_size: int = 10_000) -> None:
        self.db = db
        self.clock = clock
        #: When positions unused for EXPIRY_MS are next deleted.
        self._next_cleanup = 0
        #: Each connection's latest position (least recently used first).
        self._current: OrderedDict[store.Connection, _Current] = OrderedDict()
        self._cache_size = cache_size
        #: Each connection's latest write still under way (the earlier ones are done).
        self._writing: dict[store.Connection, asyncio.Task[None]] = {}

    async def load(self, requester: Requester, conn_id: str, pos: Pos | None) -> ConnectionState:
        """The state of the connection as of ``pos`` (a fresh one without it: the
        connection starts over); 400 ``M_UNKNOWN_POS`` when it does not know ``pos``.
        Nothing is written until :meth:`finish`."""
        if pos is None or pos.position == 0:
            # No pos: the connection starts over; position 0: it has no lists nor
            # subscriptions, so nothing was kept of it.
            return ConnectionState()
        connection = _connection(requester, conn_id)
        now = self.clock.now_ms()
        if now >= self._next_cleanup:
            self._next_cleanup = now + _TOUCH_MS
            self._write_behind(_EXPIRY, self._expire(now - EXPIRY_MS))
        current = self._current.get(connection)
        if current is None or current.position != pos.position:
            await self._written(connection)
            async with self.db.read() as conn:
                found = await store.get_position(conn, connection, pos.position)
            if found is None:
                raise unknown_pos()
            current = _Current(
                pos.position, ConnectionState.from_json(found.state), found.last_used_ts, False
            )
        if now - current.last_used_ts > EXPIRY_MS:
            self._current.pop(connection, None)
            raise unknown_pos()
        self._remember(connection, current)
        return current.state.copy()

    async def finish(
        self,
        requester: Requester,
        conn_id: str,
        pos: Pos | None,
        old: ConnectionState,
        new: ConnectionState | None,
    ) -> int:
        """Record a response: the position of ``new`` (None: the connection keeps no
        state, having no lists nor subscriptions), the previous one when nothing changed.
        In one write: the positions other than ``pos`` are forgotten (the client has it;
        without ``pos`` the connection started over), and ``new`` is stored if it changed."""
        connection = _connection(requester, conn_id)
        now = self.clock.now_ms()
        current = self._current.get(connection) if pos is not None else None
        if current is not None and current.position != (pos.position if pos else None):
            current = None
        changed = new is not None and not (current is not None and old == new)
        if pos is None:
            cleanup = True  # the connection starts over
        elif pos.position == 0:
            cleanup = changed  # nothing was kept since it started
        else:
            cleanup = current is None or not current.alone
        touch = current is not None and now - current.last_used_ts > _TOUCH_MS
        # Without lists nor subscriptions the position stays (as Synapse).
        position = pos.position if pos is not None else 0
        if changed:
            # Random: a position of a connection started over never matches an old pos.
            position = secrets.randbelow(_POSITIONS) + 1
        if not (changed or cleanup or touch):
            return position
        keep = pos.position if pos is not None and pos.position else None
        state = new.to_json() if changed and new is not None else None
        touched = current.position if touch and current is not None else None
        self._write_behind(
            connection, self._write(connection, keep, position, state, now, cleanup, touched)
        )
        if touch and current is not None:
            current.last_used_ts = now
        if changed and new is not None:
            self._remember(connection, _Current(position, new.copy(), now, alone=False))
        elif current is not None:
            current.alone = True
        elif pos is None or pos.position == 0:
            self._current.pop(connection, None)
        return position

    async def _expire(self, before_ms: int) -> None:
        async with self.db.write() as conn:
            await store.delete_unused(conn, before_ms)

    async def _write(
        self,
        connection: store.Connection,
        keep: int | None,
        position: int,
        state: str | None,
        now: int,
        cleanup: bool,
        touched: int | None,
    ) -> None:
        """One response's write: the old positions forgotten and the new one added (one
        statement batch), or the forgetting and the touch alone."""
        async with self.db.write() as conn:
            if state is not None:
                await store.replace_positions(
                    conn, connection, keep, position, state, now, delete_old=cleanup
                )
                return
            if cleanup:
                await store.delete_positions(conn, connection, keep=keep)
            if touched is not None:
                await store.touch_position(conn, connection, touched, now)

    def _write_behind(self, connection: store.Connection, write: Coroutine[Any, Any, None]) -> None:
        """Run ``write`` after the connection's earlier writes, without waiting for it."""
        earlier = self._writing.get(connection)

        async def in_order() -> None:
            if earlier is not None:
                with contextlib.suppress(Exception):
                    await earlier
            try:
                await write
            except Exception:
                # The position stays in memory; after a restart it is M_UNKNOWN_POS.
                log.exception("writing a sliding-sync position of %s failed", connection)

        task = asyncio.create_task(in_order())
        self._writing[connection] = task

        def done(finished: asyncio.Task[None]) -> None:
            if self._writing.get(connection) is finished:
                del self._writing[connection]

        task.add_done_callback(done)

    async def _written(self, connection: store.Connection) -> None:
        """Until the connection's writes under way are done."""
        task = self._writing.get(connection)
        if task is not None:
            await asyncio.shield(task)

    async def flush(self) -> None:
        """Finish every write under way (before the node stops)."""
        while self._writing:
            await asyncio.gather(*list(self._writing.values()), return_exceptions=True)

    def _remember(self, connection: store.Connection, current: _Current) -> None:
        self._current[connection] = current
        self._current.move_to_end(connection)
        while len(self._current) > self._cache_size:
            self._current.popitem(last=False)


#: The key under which the deletion of expired positions is written behind.
_EXPIRY = store.Connection("", "", "")


def _connection(requester: Requester, conn_id: str) -> store.Connection:
    return store.Connection(requester.user_id, requester.device_id, conn_id)
