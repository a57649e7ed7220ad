"""Reading a room's history for a user: visibility rules, /messages, /context, serialization."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from homeserver.common.clock import Clock
from homeserver.common.errors import MatrixError, forbidden, not_found
from homeserver.rooms.cache import RoomCache
from homeserver.rooms.eventformat import client_event
from homeserver.rooms.ignored import IgnoredUsers, hides
from homeserver.rooms.ports import Backfiller
from homeserver.rooms.reader import RoomReader
from homeserver.storage import events as event_store
from homeserver.storage import rooms as room_store
from homeserver.storage import txns as txn_store
from homeserver.storage.events import StoredEvent

HISTORY_VISIBILITY = ("m.room.history_visibility", "")
#: Memberships from the most to the least joined (Synapse's MEMBERSHIP_PRIORITY).
_MEMBERSHIP_RANK = {"join": 0, "invite": 1, "knock": 2, "leave": 3, "ban": 4}


def parse_stream_token(token: str) -> int:
    """A pagination or sync token (``s12_3`` or ``t12``) as a stream position."""
    body = token[1:].split("_", 1)[0] if token[:1] in ("s", "t") else ""
    # Backfilled history has negative positions (t-12).
    digits = body[1:] if body.startswith("-") and token[:1] == "t" else body
    # ASCII digits only ("²".isdigit() is true but int() refuses it) and within int64.
    if not (digits.isascii() and digits.isdigit() and len(digits) <= 18):
        raise MatrixError(400, "M_INVALID_PARAM", f"Invalid pagination token {token!r}")
    return int(body)


def stream_token(position: int) -> str:
    return f"t{position}"


class HistoryService:
    def __init__(
        self,
        rooms: RoomReader,
        clock: Clock,
        ignored: IgnoredUsers,
        backfiller: Backfiller | None = None,
    ) -> None:
        self.rooms = rooms
        self.clock = clock
        #: Users' ignore lists: their events (but state events) are hidden.
        self.ignored = ignored
        #: Fetches older history from other servers (None without federation).
        self.backfiller = backfiller

    async def _value_at(self, group: int | None, key: tuple[str, str]) -> dict[str, Any]:
        async with self.rooms.db.read() as conn:
            event_id = await self.rooms.state_store.get_value(conn, group, key)
        if event_id is None:
            return {}
        event = await self.rooms.get_event(event_id)
        content = event.pdu.get("content") if event else None
        return content if isinstance(content, dict) else {}

    async def visible(
        self, user_id: str, room: RoomCache, events: Sequence[StoredEvent]
    ) -> list[StoredEvent]:
        """The events ``user_id`` may see, by the history visibility and membership at each,
        less those of users they ignore (but state events)."""
        currently = room.members.get(user_id)
        ignored = await self.ignored.of(user_id)
        result: list[StoredEvent] = []
        for event in events:
            if ignored and hides(event, ignored):
                continue
            visibility = (await self._value_at(event.state_group, HISTORY_VISIBILITY)).get(
                "history_visibility", "shared"
            )
            if visibility == "world_readable":
                result.append(event)
                continue
            membership = (await self._value_at(event.state_group, ("m.room.member", user_id))).get(
                "membership"
            )
            if (
                membership != "join"
                and event.type == "m.room.member"
                and event.state_key == user_id
            ):
                # One's own membership event counts with the more joined of the memberships
                # before and after it, and one's own leave after a join or an invite is always
                # shown (both as Synapse does): a user sees their own leave, kick, ban or
                # rejected invite, so sync's leave section says why the room went away.
                async with self.rooms.db.read() as conn:
                    parent = await self.rooms.state_store.parent(conn, event.state_group)
                before = (await self._value_at(parent, ("m.room.member", user_id))).get(
                    "membership"
                )
                if membership == "leave" and before in ("join", "invite"):
                    result.append(event)
                    continue
                if isinstance(before, str) and _MEMBERSHIP_RANK.get(
                    before, 9
                ) < _MEMBERSHIP_RANK.get(str(membership), 9):
                    membership = before
            if (
                membership == "join"
                or (visibility == "shared" and currently == "join")
                or (visibility == "invited" and membership == "invite")
            ):
                result.append(event)
        return result

    async def serialize(
        self,
        events: Sequence[StoredEvent],
        requester: tuple[str, str] | None,
        *,
        include_room_id: bool = True,
    ) -> list[dict[str, Any]]:
        now = self.clock.now_ms()
        txn_ids: dict[str, str] = {}
        if requester is not None:
            own = [e.event_id for e in events if e.sender == requester[0]]
            if own:
                async with self.rooms.db.read() as conn:
                    txn_ids = await txn_store.transaction_ids(conn, own, *requester)
        redactions = await self.rooms.get_events(e.redacted_by for e in events if e.redacted_by)
        # State events in a timeline carry the state they replaced (unsigned.prev_content),
        # which clients need to say what changed ("changed their name from ...").
        replaced = await self._replaced_state(events) if requester is not None else {}
        previous = await self.rooms.get_events(replaced.values())
        return [
            client_event(
                e,
                now,
                include_room_id=include_room_id,
                txn_id=txn_ids.get(e.event_id),
                redaction=redactions.get(e.redacted_by) if e.redacted_by else None,
                replaces=previous.get(replaced.get(e.event_id, "")),
            )
            for e in events
        ]

    async def _replaced_state(self, events: Sequence[StoredEvent]) -> dict[str, str]:
        """For each state event, the event it replaced: the entry for its (type, state key)
        in the state before it (its state group's parent, see RoomService._persist)."""
        found: dict[str, str] = {}
        state_events = [e for e in events if e.state_key is not None and e.state_group is not None]
        if not state_events:
            return found
        async with self.rooms.db.read() as conn:
            for event in state_events:
                parent = await self.rooms.state_store.parent(conn, event.state_group)
                key = (event.type, event.state_key or "")
                earlier = await self.rooms.state_store.get_value(conn, parent, key)
                if earlier is not None and earlier != event.event_id:
                    found[event.event_id] = earlier
        return found

    async def check_can_read(self, user_id: str, room_id: str) -> RoomCache:
        room = await self.rooms.room(room_id)
        if room is None:
            raise forbidden(f"User {user_id} not in room {room_id}")
        membership = room.members.get(user_id)
        if membership in ("join", "invite"):
            return room
        if membership in ("leave", "ban") and not await self._forgotten(room.room_id, user_id):
            return room
        # A room one forgot (POST /forget) is read as by a stranger, as Synapse does.
        visibility = (await self.rooms.state_content(room, "m.room.history_visibility")).get(
            "history_visibility"
        )
        if visibility == "world_readable":
            return room
        raise forbidden(f"User {user_id} not in room {room_id}")

    async def _forgotten(self, room_id: str, user_id: str) -> bool:
        async with self.rooms.db.read() as conn:
            found = await room_store.get_membership(conn, room_id, user_id)
        return found is not None and found.forgotten

    async def messages(
        self,
        user_id: str,
        device_id: str,
        room_id: str,
        *,
        from_token: str | None,
        to_token: str | None,
        backwards: bool,
        limit: int,
        event_filter: dict[str, Any],
    ) -> dict[str, Any]:
        room = await self.check_can_read(user_id, room_id)
        membership = await self._own_membership_event(room, user_id)
        # Users who left see history up to their leaving.
        left = membership is not None and room.members.get(user_id) in ("leave", "ban")
        upto_cap = membership.stream_ordering if left and membership else None
        start = parse_stream_token(from_token) if from_token else None
        if start is None:
            start = self.rooms.db.stream.current if backwards else 0
        bound = parse_stream_token(to_token) if to_token else None
        upto: int | None
        after: int | None
        if backwards:
            upto, after = start, bound
        else:
            upto, after = bound, start
        if upto_cap is not None:
            upto = upto_cap if upto is None else min(upto, upto_cap)
        page = await self._page(room_id, upto, after, limit, backwards, event_filter)
        # At the start of what this node holds: ask other servers for older history.
        short = backwards and len(page) < limit and after is None
        if short and self.backfiller is not None and await self.backfiller(room, limit - len(page)):
            page = await self._page(room_id, upto, after, limit, backwards, event_filter)
        visible = await self.visible(user_id, room, page)
        chunk = await self.serialize(visible, (user_id, device_id))
        response: dict[str, Any] = {"chunk": chunk, "start": from_token or stream_token(start)}
        if len(page) == limit and page:
            last = page[-1].stream_ordering
            response["end"] = stream_token(last - 1 if backwards else last)
        if event_filter.get("lazy_load_members"):
            senders = {e.sender for e in visible}
            members = await self.rooms.get_events(
                room.state[("m.room.member", s)]
                for s in senders
                if ("m.room.member", s) in room.state
            )
            response["state"] = await self.serialize(list(members.values()), None)
        return response

    async def _page(
        self,
        room_id: str,
        upto: int | None,
        after: int | None,
        limit: int,
        backwards: bool,
        event_filter: dict[str, Any],
    ) -> list[StoredEvent]:
        async with self.rooms.db.read() as conn:
            return await event_store.room_events(
                conn,
                room_id,
                upto=upto,
                after=after,
                limit=limit,
                backwards=backwards,
                types=event_filter.get("types"),
                not_types=event_filter.get("not_types"),
                senders=event_filter.get("senders"),
                not_senders=event_filter.get("not_senders"),
            )

    async def _own_membership_event(self, room: RoomCache, user_id: str) -> StoredEvent | None:
        event_id = room.state.get(("m.room.member", user_id))
        return await self.rooms.get_event(event_id) if event_id else None

    async def context(
        self, user_id: str, device_id: str, room_id: str, event_id: str, limit: int
    ) -> dict[str, Any]:
        room = await self.check_can_read(user_id, room_id)
        event = await self.rooms.get_event(event_id)
        if (
            event is None
            or event.room_id != room_id
            or not (await self.visible(user_id, room, [event]))
        ):
            raise not_found("Event not found")
        before_limit = limit // 2
        after_limit = limit - before_limit
        async with self.rooms.db.read() as conn:
            before = await event_store.room_events(
                conn, room_id, before=event.stream_ordering, limit=before_limit, backwards=True
            )
            after = await event_store.room_events(
                conn, room_id, after=event.stream_ordering, limit=after_limit, backwards=False
            )
        before = await self.visible(user_id, room, before)
        after = await self.visible(user_id, room, after)
        state = await self.rooms.current_state_events(room_id)
        requester = (user_id, device_id)
        return {
            "event": (await self.serialize([event], requester))[0],
            "events_before": await self.serialize(before, requester),
            "events_after": await self.serialize(after, requester),
            "start": stream_token(
                (before[-1].stream_ordering if before else event.stream_ordering) - 1
            ),
            "end": stream_token(after[-1].stream_ordering if after else event.stream_ordering),
            "state": await self.serialize(state, None),
        }
