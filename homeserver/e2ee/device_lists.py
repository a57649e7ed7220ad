"""Device list changes as /sync reports them (``device_lists.changed`` and ``left``)."""

from __future__ import annotations

from homeserver.storage import device_lists as store
from homeserver.storage.database import Database


async def device_list_delta(
    db: Database, user_id: str, after: int, upto: int
) -> tuple[list[str], list[str]]:
    """(changed, left) for ``user_id`` between two stream positions.

    changed: users sharing a room with the user (or the user) whose devices or keys
    changed, and users who started sharing a room with the user.  left: users who no
    longer share any room with the user after a membership change in the range, never one
    who joined a room only after the user left it (they never shared it).
    """
    async with db.read() as conn:
        rooms_now = await store.joined_rooms(conn, user_id)
        sharing = await store.joined_members(conn, rooms_now) | {user_id}
        changed = await store.users_with_device_changes(conn, after, upto, sharing)
        maybe_left: set[str] = set()
        for change in await store.membership_changes_in_rooms(conn, rooms_now, after, upto):
            if change.user_id == user_id:
                continue
            if change.membership == "join":
                changed.add(change.user_id)
            else:
                maybe_left.add(change.user_id)
        for change in await store.own_membership_changes(conn, user_id, after, upto):
            if change.membership == "join":
                changed |= await store.joined_members(conn, [change.room_id]) - {user_id}
            else:
                # Only who was in the room when the user left: not who joined after.
                shared = await store.joined_members_at(conn, change.room_id, change.position)
                maybe_left |= shared - {user_id}
    left = maybe_left - sharing
    changed = (changed & sharing) - left
    return sorted(changed), sorted(left)
