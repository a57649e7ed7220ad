"""The sections of rooms the user is not joined to in a /sync response: invites and
knocks (stripped state), rooms left or banned from (the timeline up to the leave), and
invites to rooms on other servers that this node is not in."""

from __future__ import annotations

from typing import Any

from homeserver.accounts.service import Requester
from homeserver.rooms.cache import RoomCache
from homeserver.rooms.eventformat import STRIPPED_STATE_TYPES, stripped_event
from homeserver.rooms.history import HistoryService, stream_token
from homeserver.rooms.ignored import invited_by
from homeserver.rooms.reader import RoomReader
from homeserver.rooms.visibility import Reader
from homeserver.storage import events as event_store
from homeserver.storage import rooms as room_store
from homeserver.storage.rooms import Membership
from homeserver.sync.joined import timeline_state
from homeserver.sync.params import SyncFilter, SyncToken


async def remote_membership(
    room_service: RoomReader,
    membership: Membership,
    changed: bool,
    since: int | None,
    full_state: bool,
    rooms: dict[str, dict[str, Any]],
    ignored: frozenset[str],
) -> None:
    if membership.membership == "invite" and (changed or full_state):
        invite = await room_service.get_event(membership.event_id)
        if invite is None or invited_by(invite, membership.user_id, ignored):
            return
        state = invite.pdu.get("unsigned", {}).get("invite_room_state", [])
        events = [e for e in state if isinstance(e, dict)] if isinstance(state, list) else []
        events.append(stripped_event(invite))
        rooms["invite"][membership.room_id] = {"invite_state": {"events": events}}
    elif membership.membership == "leave" and since is not None and changed:
        rooms["leave"][membership.room_id] = {
            "timeline": {
                "events": [],
                "limited": False,
                "prev_batch": stream_token(membership.stream_ordering),
            },
            "state": {"events": []},
            "account_data": {"events": []},
        }


async def stripped_state(
    rooms: RoomReader, room: RoomCache, membership: Membership
) -> list[dict[str, Any]]:
    ids = [room.state[(t, "")] for t in STRIPPED_STATE_TYPES if (t, "") in room.state]
    found = await rooms.get_events([*ids, membership.event_id])
    events = [stripped_event(found[i]) for i in ids if i in found]
    own = found.get(membership.event_id)
    if own is not None:
        # The inviter's membership too (as Synapse), for their name and avatar.
        sender = room.state.get(("m.room.member", own.sender))
        inviter = await rooms.get_event(sender) if sender and own.sender != own.state_key else None
        if inviter is not None:
            events.append(stripped_event(inviter))
        events.append(stripped_event(own))
    return events


async def left_room(
    rooms: RoomReader,
    history: HistoryService,
    requester: Requester,
    room: RoomCache,
    membership: Membership,
    since: SyncToken | None,
    sync_filter: SyncFilter,
) -> dict[str, Any]:
    """A room left or banned from: its timeline up to the leave and the state with it, both
    as the user saw them then (:mod:`homeserver.rooms.visibility`)."""
    limit = sync_filter.timeline_limit
    async with rooms.db.read() as conn:
        recent = await event_store.room_events(
            conn,
            room.room_id,
            after=since.position if since else None,
            upto=membership.stream_ordering,
            limit=limit + 1,
            backwards=True,
        )
        changed = (
            await room_store.state_changes_after(
                conn, room.room_id, since.position, membership.stream_ordering
            )
            if since is not None
            else None
        )
    visibility = history.visibility
    timeline = list(reversed(recent[:limit]))
    timeline = await visibility.events(requester.user_id, room, timeline)
    horizon = await rooms.get_event(membership.event_id)
    reader = Reader(requester.user_id, room, membership.membership, horizon)
    state = (
        await timeline_state(visibility, reader, timeline, since, changed, sync_filter)
        if horizon is not None
        else []
    )
    return {
        "timeline": {
            "events": await history.serialize(
                timeline, (requester.user_id, requester.device_id), include_room_id=False
            ),
            "limited": len(recent) > limit,
            "prev_batch": stream_token(
                (timeline[0].stream_ordering - 1) if timeline else membership.stream_ordering
            ),
        },
        "state": {"events": await history.serialize(state, None, include_room_id=False)},
        "account_data": {"events": []},
    }
