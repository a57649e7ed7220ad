"""``GET /rooms/{roomId}/initialSync``: a snapshot of one room (its state, latest messages,
the user's membership and the room's directory visibility), as Synapse serves it; 403 for
who never was in the room."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from homeserver.client_api.common import requester, services
from homeserver.common.http import json_response
from homeserver.rooms.history import stream_token

routes = web.RouteTableDef()
#: The messages of the snapshot (Synapse's default limit).
MESSAGES = 10


@routes.get("/_matrix/client/v3/rooms/{room_id}/initialSync")
async def room_initial_sync(request: web.Request) -> web.Response:
    svc = services(request)
    who = await requester(request)
    room_id = request.match_info["room_id"]
    state = await svc.room_state.state(who.user_id, room_id)
    page = await svc.history.messages(
        who.user_id, who.device_id, room_id,
        from_token=None, to_token=None, backwards=True, limit=MESSAGES, event_filter={},
    )  # fmt: skip
    # Oldest first, between the token before the oldest (the beginning when the page holds
    # all there is) and the token of now.
    messages: dict[str, Any] = {
        "chunk": list(reversed(page["chunk"])),
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
    return json_response(body)
