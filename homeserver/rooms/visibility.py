"""What of a room's history and state a user may see: the one place that decides it.

Every endpoint that returns a room's events or state to a user (``/messages``,
``/context``, ``/event``, ``/state``, ``/members``, ``/joined_members``, ``/sync``) asks
this module, so that a rule holds everywhere or nowhere.

A user reads a room as a :class:`Reader`, one of:

- a **member** (joined or invited): each event by the history visibility and their
  membership at it; the current state when joined;
- a **departed member** (left, kicked or banned, and not forgotten): the same, but
  nothing after their leave (their *horizon*): no event after it and no state later than
  the state just after it;
- **anyone**, when the room is world-readable (also a departed member who forgot it, as
  Synapse reads a forgotten room): every event and the current state, unless the
  features' event policy refuses the user this peek (``EventPolicy.user_may_peek``: a
  partner account sees only the rooms it is in).

State is always read *at a point*: after an event the user may see (the state a client
needs to show that event), or now; a point past the reader's horizon is the horizon.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from homeserver.common.errors import forbidden
from homeserver.rooms.cache import RoomCache, StateKey
from homeserver.rooms.ignored import IgnoredUsers, hides
from homeserver.rooms.policy import EventPolicy
from homeserver.rooms.reader import RoomReader
from homeserver.storage import events as event_store
from homeserver.storage import rooms as room_store
from homeserver.storage.events import StoredEvent

HISTORY_VISIBILITY = ("m.room.history_visibility", "")
#: Memberships from the most to the least joined (Synapse's MEMBERSHIP_PRIORITY).
_MEMBERSHIP_RANK = {"join": 0, "invite": 1, "knock": 2, "leave": 3, "ban": 4}


@dataclass(frozen=True)
class Reader:
    """A user reading a room, and how far they may read."""

    user_id: str
    room: RoomCache
    #: Their membership now ("join", "invite", "leave", "ban"; None for a stranger or a
    #: departed member who forgot the room).
    membership: str | None
    #: Their leave, kick or ban while they have not forgotten the room: they see nothing
    #: after it.  None: no limit.
    horizon: StoredEvent | None

    @property
    def joined(self) -> bool:
        return self.membership == "join"

    def caps(self, position: int | None) -> int | None:
        """A stream position (None: now) brought back to the horizon."""
        if self.horizon is None:
            return position
        limit = self.horizon.stream_ordering
        return limit if position is None else min(position, limit)


def with_members(state: Mapping[StateKey, str], users: Collection[str]) -> dict[StateKey, str]:
    """A state map less the members other than ``users`` (lazy-loading members)."""
    return {k: v for k, v in state.items() if k[0] != "m.room.member" or k[1] in users}


class Visibility:
    def __init__(
        self, rooms: RoomReader, ignored: IgnoredUsers, policy: EventPolicy | None = None
    ) -> None:
        self.rooms = rooms
        #: Users' ignore lists: their events (but state events) are hidden.
        self.ignored = ignored
        #: The features' event policy (asked before a stranger peeks), if any.
        self.policy = policy

    # ------------------------------------------------------------------ who reads

    async def reader(self, user_id: str, room_id: str) -> Reader:
        """The user as a reader of the room; 403 when they may read none of it."""
        room = await self.rooms.room(room_id)
        if room is None:
            raise forbidden(f"User {user_id} not in room {room_id}")
        membership = room.members.get(user_id)
        if membership in ("join", "invite"):
            return Reader(user_id, room, membership, None)
        if membership in ("leave", "ban") and not await self._forgotten(room_id, user_id):
            event_id = room.state.get(("m.room.member", user_id))
            horizon = await self.rooms.get_event(event_id) if event_id else None
            if horizon is not None:
                return Reader(user_id, room, membership, horizon)
        if await self._world_readable(room):
            if self.policy is not None:
                await self.policy.user_may_peek(user_id, room_id)
            return Reader(user_id, room, None, None)
        raise forbidden(f"User {user_id} not in room {room_id}")

    async def joined_reader(self, user_id: str, room_id: str) -> Reader:
        """The user as a reader who must be joined to the room now (403 otherwise)."""
        room = await self.rooms.require_joined(room_id, user_id)
        return Reader(user_id, room, "join", None)

    async def _forgotten(self, room_id: str, user_id: str) -> bool:
        async with self.rooms.db.read() as conn:
            found = await room_store.get_membership(conn, room_id, user_id)
        return found is not None and found.forgotten

    async def _world_readable(self, room: RoomCache) -> bool:
        content = await self.rooms.state_content(room, "m.room.history_visibility")
        return content.get("history_visibility") == "world_readable"

    # ------------------------------------------------------------------ events

    async def events(
        self,
        user_id: str,
        room: RoomCache,
        events: Sequence[StoredEvent],
        *,
        with_ignored: bool = False,
    ) -> list[StoredEvent]:
        """The events ``user_id`` may see, by the history visibility and membership at each,
        less those of users they ignore (but state events) unless ``with_ignored``."""
        currently = room.members.get(user_id)
        ignored = frozenset() if with_ignored else await self.ignored.of(user_id)
        return [
            event
            for event in events
            if not (ignored and hides(event, ignored))
            and await self._may_see(user_id, currently, event)
        ]

    async def _may_see(self, user_id: str, currently: str | None, event: StoredEvent) -> bool:
        visibility = (await self._value_at(event.state_group, HISTORY_VISIBILITY)).get(
            "history_visibility", "shared"
        )
        if visibility == "world_readable" or (visibility == "shared" and currently == "join"):
            # A member now sees all shared history (the common case: no membership read).
            return True
        membership = (await self._value_at(event.state_group, ("m.room.member", user_id))).get(
            "membership"
        )
        if membership != "join" and event.type == "m.room.member" and event.state_key == user_id:
            # One's own membership event counts with the more joined of the memberships
            # before and after it, and one's own leave after a join or an invite is always
            # shown (both as Synapse does): a user sees their own leave, kick, ban or
            # rejected invite, so sync's leave section says why the room went away.
            async with self.rooms.db.read() as conn:
                parent = await self.rooms.state_store.parent(conn, event.state_group)
            before = (await self._value_at(parent, ("m.room.member", user_id))).get("membership")
            if membership == "leave" and before in ("join", "invite"):
                return True
            if isinstance(before, str) and _MEMBERSHIP_RANK.get(before, 9) < _MEMBERSHIP_RANK.get(
                str(membership), 9
            ):
                membership = before
        return (
            membership == "join"
            or (visibility == "shared" and currently == "join")
            or (visibility == "invited" and membership == "invite")
        )

    async def _value_at(self, group: int | None, key: StateKey) -> dict[str, Any]:
        # From memory when the state groups on the path are there: no connection taken.
        known, event_id = self.rooms.state_store.cached_value(group, key)
        if not known:
            async with self.rooms.db.read() as conn:
                event_id = await self.rooms.state_store.get_value(conn, group, key)
        if event_id is None:
            return {}
        event = await self.rooms.get_event(event_id)
        content = event.pdu.get("content") if event else None
        return content if isinstance(content, dict) else {}

    # ------------------------------------------------------------------ state

    async def state_now(self, reader: Reader) -> Mapping[StateKey, str]:
        """The state the reader may see now: the current state for a member who is joined
        and for anyone in a world-readable room, the state at their leave for a departed
        member; 403 for an invitee (the spec's /state: "not a member")."""
        if reader.horizon is not None:
            return await self.rooms.state_at(reader.horizon)
        if reader.joined or reader.membership is None or await self._world_readable(reader.room):
            return reader.room.state
        raise forbidden("You are not joined to this room")

    async def state_after(self, reader: Reader, event: StoredEvent) -> dict[StateKey, str]:
        """The state just after ``event`` (one the reader may see), or at their horizon
        when the event lies past it."""
        horizon = reader.horizon
        if horizon is not None and event.stream_ordering > horizon.stream_ordering:
            event = horizon
        return await self.rooms.state_at(event)

    async def state_before(self, reader: Reader, event: StoredEvent) -> dict[StateKey, str]:
        """The state just before ``event`` (the start of a timeline that begins with it)."""
        horizon = reader.horizon
        if horizon is not None and event.stream_ordering > horizon.stream_ordering:
            return await self.rooms.state_at(horizon)
        if event.state_key is None:
            return await self.rooms.state_at(event)
        # A state event's group is the state after it: take its parent (see
        # RoomService._persist).
        async with self.rooms.db.read() as conn:
            parent = await self.rooms.state_store.parent(conn, event.state_group)
            return await self.rooms.state_store.get_state(conn, parent)

    async def state_at_position(self, reader: Reader, position: int) -> dict[StateKey, str]:
        """The state as of a stream position (a sync or pagination token): after the room's
        last event at or before it, no later than the reader's horizon."""
        async with self.rooms.db.read() as conn:
            last = await event_store.room_events(
                conn, reader.room.room_id, upto=reader.caps(position), limit=1, backwards=True
            )
        if not last:
            return {}
        return await self.state_after(reader, last[0])

    async def state_events(self, state: Mapping[StateKey, str]) -> list[StoredEvent]:
        """The events of a state map, in its order."""
        found = await self.rooms.get_events(state.values())
        return [found[i] for i in state.values() if i in found]
