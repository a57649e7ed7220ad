"""Connections and their positions (``pos``), kept in the database so that a restart of the
node keeps them valid (as Synapse does since 1.114).

A connection is (user, device, ``conn_id``).  Each position it was given records which
rooms it was sent and with which config: a room is *live* (sent up to the position's
stream token), *previously* sent (up to an older stream position, with news since), or
never sent (absent).  The client sends back the position of the last response it got;
the others are then forgotten (as Synapse does), and a request without ``pos`` starts the
connection over.  A position unknown, not the requester's, or unused for a week is
``M_UNKNOWN_POS``; a stream token ahead of the node's is brought back to it (as Synapse).
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field

from homeserver.accounts.service import Requester
from homeserver.common.clock import Clock
from homeserver.common.errors import MatrixError
from homeserver.storage import sliding_sync as store
from homeserver.storage.database import Database
from homeserver.sync.params import SyncToken
from homeserver.sync.sliding.request import RoomConfig

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
        head, _, tail = text.partition("/")
        if not (head.isascii() and head.isdigit() and len(head) <= 18) or not tail:
            raise MatrixError(400, "M_INVALID_PARAM", f"Invalid pos {text!r}")
        return cls(int(head), SyncToken.parse(tail))


@dataclass
class ConnectionState:
    """What a connection was sent: room ID -> None (live) or the stream position it was
    sent up to (previously); and the config each room was last sent with."""

    rooms: dict[str, int | None] = field(default_factory=dict)
    configs: dict[str, RoomConfig] = field(default_factory=dict)

    def copy(self) -> ConnectionState:
        return ConnectionState(dict(self.rooms), dict(self.configs))

    def to_json(self) -> str:
        return json.dumps(
            {
                "rooms": self.rooms,
                "configs": {r: c.to_json() for r, c in self.configs.items()},
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> ConnectionState:
        data = json.loads(text)
        return cls(
            {str(r): (None if s is None else int(s)) for r, s in data["rooms"].items()},
            {str(r): RoomConfig.from_json(c) for r, c in data["configs"].items()},
        )


class ConnectionStore:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        #: When positions unused for EXPIRY_MS are next deleted.
        self._next_cleanup = 0

    async def load(self, requester: Requester, conn_id: str, pos: Pos | None) -> ConnectionState:
        """The state of the connection as of ``pos`` (a fresh one without it: the
        connection starts over); 400 ``M_UNKNOWN_POS`` when it does not know ``pos``."""
        connection = _connection(requester, conn_id)
        if pos is None:
            async with self.db.write() as conn:
                await store.delete_positions(conn, connection)
            return ConnectionState()
        if pos.position == 0:
            return ConnectionState()  # a connection with no lists nor subscriptions
        async with self.db.read() as conn:
            found = await store.get_position(conn, connection, pos.position)
        now = self.clock.now_ms()
        if now >= self._next_cleanup:
            self._next_cleanup = now + _TOUCH_MS
            async with self.db.write() as conn:
                await store.delete_unused(conn, now - EXPIRY_MS)
        if found is None or now - found.last_used_ts > EXPIRY_MS:
            raise unknown_pos()
        async with self.db.write() as conn:
            # The client has this position: the others will not come back.
            await store.delete_positions(conn, connection, keep=pos.position)
            if now - found.last_used_ts > _TOUCH_MS:
                await store.touch_position(conn, connection, pos.position, now)
        return ConnectionState.from_json(found.state)

    async def save(
        self,
        requester: Requester,
        conn_id: str,
        previous: Pos | None,
        old: ConnectionState,
        new: ConnectionState,
    ) -> int:
        """The position of ``new``: the previous one when nothing changed."""
        if previous is not None and previous.position and old == new:
            return previous.position
        # Random: a position of a connection started over never matches an old ``pos``.
        position = secrets.randbelow(_POSITIONS) + 1
        async with self.db.write() as conn:
            await store.add_position(
                conn, _connection(requester, conn_id), position, new.to_json(), self.clock.now_ms()
            )
        return position


def _connection(requester: Requester, conn_id: str) -> store.Connection:
    return store.Connection(requester.user_id, requester.device_id, conn_id)
