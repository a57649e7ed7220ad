"""Reading a room's history for a user: /messages, /context and serialization (what the
user may see of it is :mod:`homeserver.rooms.visibility`'s to say)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from homeserver.common.clock import Clock
from homeserver.common.errors import MatrixError, not_found
from homeserver.rooms.aggregations import Aggregations, Bundle
from homeserver.rooms.cache import StateKey
from homeserver.rooms.eventformat import client_event
from homeserver.rooms.ports import Backfiller
from homeserver.rooms.reader import RoomReader
from homeserver.rooms.visibility import Visibility, with_members
from homeserver.storage import events as event_store
from homeserver.storage import txns as txn_store
from homeserver.storage.events import StoredEvent


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
        visibility: Visibility,
        backfiller: Backfiller | None = None,
    ) -> None:
        self.rooms = rooms
        self.clock = clock
        #: What of each room each user may see.
        self.visibility = visibility
        self.ignored = visibility.ignored
        #: Fetches older history from other servers (None without federation).
        self.backfiller = backfiller
        #: The bundled aggregations (``unsigned.m.relations``) of the events served.
        self.aggregations = Aggregations(rooms, visibility)

    async def serialize(
        self,
        events: Sequence[StoredEvent],
        requester: tuple[str, str] | None,
        *,
        include_room_id: bool = True,
        aggregate: bool = False,
    ) -> list[dict[str, Any]]:
        """The events as the requester's client sees them; with ``aggregate``, each with its
        bundled aggregations (the endpoints the spec lists: /messages, /context, /event,
        /relations, /threads, a limited /sync timeline, /search)."""
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
        bundles: dict[str, Bundle] = {}
        if aggregate and requester is not None:
            bundles = await self.aggregations.bundles(events, requester[0])
        served = []
        for e in events:
            out = client_event(
                e,
                now,
                include_room_id=include_room_id,
                txn_id=txn_ids.get(e.event_id),
                redaction=redactions.get(e.redacted_by) if e.redacted_by else None,
                replaces=previous.get(replaced.get(e.event_id, "")),
            )
            if e.event_id in bundles:
                out["unsigned"]["m.relations"] = _relations(
                    bundles[e.event_id], bundles, now, include_room_id
                )
            served.append(out)
        return served

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
        reader = await self.visibility.reader(user_id, room_id)
        room = reader.room
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
        # A departed member sees history up to their leaving.
        upto = reader.caps(upto)
        page = await self._page(room_id, upto, after, limit, backwards, event_filter)
        # At the start of what this node holds: ask other servers for older history.
        short = backwards and len(page) < limit and after is None
        if short and self.backfiller is not None and await self.backfiller(room, limit - len(page)):
            page = await self._page(room_id, upto, after, limit, backwards, event_filter)
        visible = await self.visibility.events(user_id, room, page)
        chunk = await self.serialize(visible, (user_id, device_id), aggregate=True)
        response: dict[str, Any] = {"chunk": chunk, "start": from_token or stream_token(start)}
        if len(page) == limit and page:
            last = page[-1].stream_ordering
            response["end"] = stream_token(last - 1 if backwards else last)
        if event_filter.get("lazy_load_members") and visible:
            # The senders' memberships as of the first event of the chunk (as Synapse).
            state = await self.visibility.state_after(reader, visible[0])
            members = with_members(only_members(state), {e.sender for e in visible})
            events = await self.visibility.state_events(members)
            response["state"] = await self.serialize(events, None)
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

    async def context(
        self,
        user_id: str,
        device_id: str,
        room_id: str,
        event_id: str,
        limit: int,
        event_filter: dict[str, Any],
    ) -> dict[str, Any]:
        reader = await self.visibility.reader(user_id, room_id)
        room = reader.room
        event = await self.rooms.get_event(event_id)
        if (
            event is None
            or event.room_id != room_id
            or not (await self.visibility.events(user_id, room, [event]))
        ):
            raise not_found("Event not found")
        before_limit = limit // 2
        after_limit = limit - before_limit
        filters = _event_filters(event_filter)
        async with self.rooms.db.read() as conn:
            before = await event_store.room_events(
                conn, room_id, before=event.stream_ordering, limit=before_limit, backwards=True,
                **filters,
            )  # fmt: skip
            after = await event_store.room_events(
                conn, room_id, after=event.stream_ordering, upto=reader.caps(None),
                limit=after_limit, backwards=False, **filters,
            )  # fmt: skip
        before = await self.visibility.events(user_id, room, before)
        after = await self.visibility.events(user_id, room, after)
        # The spec: the state at the last event returned.
        state = await self.visibility.state_after(reader, after[-1] if after else event)
        if event_filter.get("lazy_load_members"):
            state = with_members(state, {e.sender for e in (*before, event, *after)})
        # One serialization (and one read of the aggregations) for the three parts.
        served = await self.serialize(
            [event, *before, *after], (user_id, device_id), aggregate=True
        )
        return {
            "event": served[0],
            "events_before": served[1 : 1 + len(before)],
            "events_after": served[1 + len(before) :],
            "start": stream_token(
                (before[-1].stream_ordering if before else event.stream_ordering) - 1
            ),
            "end": stream_token(after[-1].stream_ordering if after else event.stream_ordering),
            "state": await self.serialize(await self.visibility.state_events(state), None),
        }


def _relations(
    bundle: Bundle, bundles: dict[str, Bundle], now: int, include_room_id: bool
) -> dict[str, Any]:
    """An event's ``unsigned.m.relations``; a thread's latest reply carries its own."""
    found: dict[str, Any] = {}
    if bundle.thread is not None:
        reply, count, took_part = bundle.thread
        latest = client_event(reply, now, include_room_id=include_room_id)
        own = bundles.get(reply.event_id)
        if own is not None and (own.replace or own.references):
            latest["unsigned"]["m.relations"] = _relations(
                Bundle(replace=own.replace, references=own.references), {}, now, include_room_id
            )
        found["m.thread"] = {
            "latest_event": latest,
            "count": count,
            "current_user_participated": took_part,
        }
    if bundle.replace is not None:
        found["m.replace"] = client_event(bundle.replace, now, include_room_id=include_room_id)
    if bundle.references:
        found["m.reference"] = {"chunk": [{"event_id": i} for i in bundle.references]}
    return found


def _event_filters(event_filter: dict[str, Any]) -> dict[str, Any]:
    """The parts of a RoomEventFilter the event store applies."""
    keys = ("types", "not_types", "senders", "not_senders")
    return {k: event_filter[k] for k in keys if event_filter.get(k) is not None}


def only_members(state: dict[StateKey, str]) -> dict[StateKey, str]:
    return {k: v for k, v in state.items() if k[0] == "m.room.member"}
