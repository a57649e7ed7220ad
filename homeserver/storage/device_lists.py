"""Device list changes, and the memberships that say whose device lists a user follows.

- ``device_list_changes``: one row per change of a user's devices or keys, at a stream
  position, read by /sync and /keys/changes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from homeserver.storage.changes import recording
from homeserver.storage.schema import device_list_changes, memberships


async def add_device_list_change(conn: AsyncConnection, user_id: str, stream_id: int) -> None:
    recording().device_lists.mark(user_id, stream_id)
    await conn.execute(insert(device_list_changes).values(stream_id=stream_id, user_id=user_id))


async def latest_device_list_change(
    conn: AsyncConnection, user_id: str, before: int | None = None
) -> int | None:
    """The stream position of the user's latest device list change (before ``before``)."""
    query = select(func.max(device_list_changes.c.stream_id)).where(
        device_list_changes.c.user_id == user_id
    )
    if before is not None:
        query = query.where(device_list_changes.c.stream_id < before)
    found = (await conn.execute(query)).scalar()
    return int(found) if found is not None else None


async def users_with_device_changes(
    conn: AsyncConnection, after: int, upto: int, user_ids: Iterable[str] | None = None
) -> set[str]:
    query = select(device_list_changes.c.user_id).where(
        device_list_changes.c.stream_id > after, device_list_changes.c.stream_id <= upto
    )
    if user_ids is not None:
        query = query.where(device_list_changes.c.user_id.in_(list(user_ids)))
    return {r.user_id for r in await conn.execute(query.distinct())}


async def joined_rooms(conn: AsyncConnection, user_id: str) -> set[str]:
    rows = await conn.execute(
        select(memberships.c.room_id).where(
            memberships.c.user_id == user_id, memberships.c.membership == "join"
        )
    )
    return {r.room_id for r in rows}


async def joined_members(conn: AsyncConnection, room_ids: Iterable[str]) -> set[str]:
    rooms = list(room_ids)
    if not rooms:
        return set()
    rows = await conn.execute(
        select(memberships.c.user_id)
        .where(memberships.c.room_id.in_(rooms), memberships.c.membership == "join")
        .distinct()
    )
    return {r.user_id for r in rows}


async def users_sharing_rooms(conn: AsyncConnection, user_id: str) -> set[str]:
    """Users joined to a room the user is joined to (the user included)."""
    return await joined_members(conn, await joined_rooms(conn, user_id)) | {user_id}


@dataclass(frozen=True)
class MembershipChange:
    room_id: str
    user_id: str
    membership: str
    #: The stream position it took effect at.
    position: int = 0


async def joined_members_at(conn: AsyncConnection, room_id: str, position: int) -> set[str]:
    """Users joined to ``room_id`` since ``position`` or before, and still joined: those
    certainly in the room at ``position`` (who joined later is left out)."""
    rows = await conn.execute(
        select(memberships.c.user_id).where(
            memberships.c.room_id == room_id,
            memberships.c.membership == "join",
            memberships.c.stream_ordering <= position,
        )
    )
    return {r.user_id for r in rows}


async def membership_changes_in_rooms(
    conn: AsyncConnection, room_ids: Iterable[str], after: int, upto: int
) -> list[MembershipChange]:
    """Current memberships in ``room_ids`` that took effect in (after, upto]."""
    rooms = list(room_ids)
    if not rooms:
        return []
    rows = await conn.execute(
        select(memberships.c.room_id, memberships.c.user_id, memberships.c.membership).where(
            memberships.c.room_id.in_(rooms),
            memberships.c.stream_ordering > after,
            memberships.c.stream_ordering <= upto,
        )
    )
    return [MembershipChange(r.room_id, r.user_id, r.membership) for r in rows]


async def own_membership_changes(
    conn: AsyncConnection, user_id: str, after: int, upto: int
) -> list[MembershipChange]:
    rows = await conn.execute(
        select(
            memberships.c.room_id,
            memberships.c.user_id,
            memberships.c.membership,
            memberships.c.stream_ordering,
        ).where(
            memberships.c.user_id == user_id,
            memberships.c.stream_ordering > after,
            memberships.c.stream_ordering <= upto,
        )
    )
    return [MembershipChange(r.room_id, r.user_id, r.membership, r.stream_ordering) for r in rows]
