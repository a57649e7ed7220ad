"""Read receipts and unread notification counts of the rooms one /sync shows, each read for
all of those rooms at once (a query per room made an initial sync of a hundred rooms twice
as slow as Synapse's)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from homeserver.rooms.cache import RoomCache
from homeserver.rooms.reader import RoomReader
from homeserver.storage import events as event_store
from homeserver.storage import push as push_store
from homeserver.storage import userdata as userdata_store
from homeserver.storage.database import Database


async def receipts_after(
    db: Database, rooms: list[tuple[str, int | None]], upto: int
) -> dict[str, list[userdata_store.Receipt]]:
    """The receipts each room's section shows: (room ID, since position or None for all);
    only rooms whose receipts the change tracker saw change are read."""
    by_since: dict[int | None, list[str]] = {}
    for room_id, after in rooms:
        if after is None or db.changes.receipts.changed_since(room_id, after):
            by_since.setdefault(after, []).append(room_id)
    found: dict[str, list[userdata_store.Receipt]] = {}
    if not by_since:
        return found
    async with db.read() as conn:
        for after, room_ids in by_since.items():
            for receipt in await userdata_store.receipts_for_rooms(conn, room_ids, after, upto):
                found.setdefault(receipt.room_id, []).append(receipt)
    return found


async def unread(
    db: Database,
    rooms_service: RoomReader,
    rooms: list[RoomCache],
    user_id: str,
    own: Mapping[str, list[userdata_store.Receipt]] | None = None,
) -> dict[str, dict[str, tuple[int, int]]]:
    """Notifications and highlights (their push actions) by room and thread, after the
    user's unthreaded read receipt (threaded receipts delete their thread's actions up to
    them when they are sent), or after the user's membership when there is none.  ``own``:
    the user's m.read and m.read.private receipts of those rooms, when read already."""
    if not rooms:
        return {}
    after: dict[str, int] = {}
    async with db.read() as conn:
        receipts = (
            own
            if own is not None
            else await userdata_store.receipts_of_user(
                conn, user_id, [r.room_id for r in rooms], ["m.read", "m.read.private"]
            )
        )
        mine = {
            room_id: unthreaded
            for room_id, found in receipts.items()
            if (unthreaded := [r for r in found if not r.thread_id])
        }
        read = await event_store.get_events(
            conn, [r.event_id for found in mine.values() for r in found]
        )
        members = await rooms_service.get_events(
            member_id
            for room in rooms
            if room.room_id not in mine and room.members.get(user_id) is not None
            if (member_id := room.state.get(("m.room.member", user_id)))
        )
        for room in rooms:
            if room.room_id in mine:
                after[room.room_id] = max(
                    (read[r.event_id].stream_ordering for r in mine[room.room_id]
                     if r.event_id in read),
                    default=0,
                )  # fmt: skip
            else:
                member = members.get(room.state.get(("m.room.member", user_id), ""))
                after[room.room_id] = member.stream_ordering if member else 0
        return await push_store.unread_counts_in_rooms(conn, user_id, after)


def entry(threads: dict[str, tuple[int, int]], by_thread: bool) -> dict[str, Any]:
    """A room's ``unread_notifications`` (and ``unread_thread_notifications`` when the
    filter asks for counts per thread: the main timeline's apart from each thread's, as the
    spec's threaded read receipts read them)."""
    # Without threads, every thread counts in the room's figures.
    n, h = threads.get(push_store.MAIN, (0, 0)) if by_thread else push_store.all_threads(threads)
    result: dict[str, Any] = {
        "unread_notifications": {"notification_count": n, "highlight_count": h}
    }
    others = {
        root: {"notification_count": n, "highlight_count": h}
        for root, (n, h) in sorted(threads.items())
        if root != push_store.MAIN and (n or h)
    }
    if by_thread and others:
        result["unread_thread_notifications"] = others
    return result
