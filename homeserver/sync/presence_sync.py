"""/sync's ``presence`` section: which users' presence a sync is told, read from the
``presence`` table and the presence the node keeps in memory."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from homeserver.common.clock import Clock
from homeserver.rooms.reader import RoomReader
from homeserver.storage import presence as store
from homeserver.storage.database import Database
from homeserver.sync.presence_state import UserPresence, from_row


async def presence_events(
    db: Database,
    rooms: RoomReader,
    states: Mapping[str, UserPresence],
    clock: Clock,
    user_id: str,
    since: int | None,
    upto: int,
    joined_rooms: Sequence[str],
) -> list[dict[str, Any]] | None:
    """Of the users sharing a room with ``user_id`` (and ``user_id``), those not offline on
    an initial sync or after ``user_id`` joined a room, else those changed and those who
    joined a room since (as Synapse's newly joined users), not offline; None when there is
    nothing to tell (the section is left out).  ``states``: the presence kept in memory,
    which has the last word over the table's."""
    users = {user_id}
    for room_id in joined_rooms:
        room = await rooms.room(room_id)
        if room is not None:
            users.update(room.joined())
    changes = db.changes
    everyone = since is None or changes.memberships.changed_since(user_id, since)
    newcomers = set() if since is None or everyone else {
        u for u in users if changes.memberships.changed_since(u, since)
    }  # fmt: skip
    quiet = since is not None and not changes.presence.any_changed_since(users, since)
    if quiet and not everyone and not newcomers:
        return None
    async with db.read() as conn:
        if since is None or everyone:
            rows = await store.presence_of(conn, users)
        else:
            rows = [r for r in await store.presence_changed(conn, since, upto)
                    if r.user_id in users]  # fmt: skip
            changed = {r.user_id for r in rows}
            rows += [r for r in await store.presence_of(conn, newcomers - changed)
                     if r.state != "offline"]  # fmt: skip
    if since is None or everyone:
        rows = [r for r in rows if r.state != "offline"]
    now = clock.now_ms()
    events = []
    for row in rows:
        state = states.get(row.user_id) or from_row(row)
        content = state.content(now)
        events.append({"type": "m.presence", "sender": row.user_id, "content": content})
    return events
