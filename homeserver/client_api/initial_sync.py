"""The sync of before ``/sync`` (deprecated in the spec, still served by Synapse):
``GET /rooms/{roomId}/initialSync``, a snapshot of one room (its state, latest messages, the
user's membership and the room's directory visibility; 403 for who never was in the room),
``GET /initialSync``, that of every joined room, and ``GET /events``, the events since a
token (``/sync`` underneath: its tokens, its long-polling)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from homeserver.accounts.requester import Requester
from homeserver.client_api.common import requester, services
from homeserver.client_api.services import Services
from homeserver.common.http import json_response, query_int
from homeserver.rooms.history import stream_token
from homeserver.sync.params import SyncFilter

routes = web.RouteTableDef()
#: The messages of the snapshot (Synapse's default limit).
MESSAGES = 10


#: The events one ``/events`` answer holds at most (more: the oldest are left out).
EVENTS_LIMIT = 100


@routes.get("/_matrix/client/v3/rooms/{room_id}/initialSync")
async def room_initial_sync(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    return json_response(await _snapshot(svc, who, request.match_info["room_id"], MESSAGES))


@routes.get("/_matrix/client/v3/initialSync")
async def initial_sync(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    limit = query_int(request, "limit", MESSAGES, minimum=0, maximum=100)
    end = str(svc.sync.current_token())
    rooms = [
        await _snapshot(svc, who, room_id, limit)
        for room_id in await svc.rooms.joined_rooms(who.user_id)
    ]
    return json_response({"end": end, "rooms": rooms, "presence": []})


@routes.get("/_matrix/client/v3/events")
async def events(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    since = request.query.get("from") or str(svc.sync.current_token())
    room_id = request.query.get("room_id")
    timeline = SyncFilter(
        timeline_limit=EVENTS_LIMIT,
        rooms=[room_id] if room_id is not None else None,
        account_data=False,
        ephemeral=False,
    )
    timeout = query_int(request, "timeout", 0, minimum=0)
    response = await svc.sync.sync(who, since, timeout, timeline)
    chunk = [
        {**event, "room_id": joined_room}
        for joined_room, room in response.get("rooms", {}).get("join", {}).items()
        for event in room.get("timeline", {}).get("events", [])
    ]
    return json_response({"start": since, "end": response["next_batch"], "chunk": chunk})


async def _snapshot(svc: Services, who: Requester, room_id: str, limit: int) -> dict[str, Any]:
    state = await svc.room_state.state(who.user_id, room_id)
    page = await svc.history.messages(
        who.user_id, who.device_id, room_id,
        from_token=None, to_token=None, backwards=True, limit=max(limit, 1), event_filter={},
    )  # fmt: skip
    # Oldest first, between the token before the oldest (the beginning when the page holds
    # all there is) and the token of now.
    messages: dict[str, Any] = {
        "chunk": list(reversed(page["chunk"]))[-limit:] if limit else [],
        "start": page.get("end", stream_token(0)),
        "end": page["start"],
    }
    body: dict[str, Any] = {
        "room_id": room_id,
        "messages": messages,
        "state": await svc.history.serialize(state, None),
        "visibility": await svc.directory.visibility(room_id),
    }
    for event in state:
        if event.pdu.get("type") == "m.room.member" and event.pdu.get("state_key") == who.user_id:
            body["membership"] = event.pdu.get("content", {}).get("membership")
    return body
