"""What rooms need from services in other packages (federation, accounts), as
typing.Protocols.  Nothing here imports those packages: the composition root
(homeserver/node/wiring.py) hands the implementations to the constructors.

(What RoomService tells about new events, hooks, listeners and the outbox, is in
``hooks.py``.)
"""

from __future__ import annotations

from typing import Protocol

from homeserver.rooms.cache import RoomCache


class Backfiller(Protocol):
    """Fetches older history of a room from other servers: (room, how many events) ->
    whether any arrived (homeserver.federation.joins.RemoteRooms.backfill)."""

    async def __call__(self, room: RoomCache, limit: int, /) -> bool: ...
