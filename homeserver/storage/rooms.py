"""Rooms, their current state and memberships, and room aliases."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from homeserver.storage.changes import recording
from homeserver.storage.schema import (
    current_state,
    memberships,
    room_aliases,
    rooms,
    state_deltas,
)

StateKey = tuple[str, str]


@dataclass(frozen=True)
class Room:
    room_id: str
    room_version: str
    creator: str
    is_public: bool
    created_ts: int


@dataclass(frozen=True)
class Membership:
    room_id: str
    user_id: str
    membership: str
    event_id: str
    stream_ordering: int
    forgotten: bool


async def insert_room(
    conn: AsyncConnection, room_id: str, version: str, creator: str, is_public: bool, ts: int
) -> None:
    await conn.execute(
        insert(rooms).values(
            room_id=room_id,
            room_version=version,
            creator=creator,
            is_public=is_public,
            created_ts=ts,
        )
    )


async def get_room(conn: AsyncConnection, room_id: str) -> Room | None:
    row = (await conn.execute(select(rooms).where(rooms.c.room_id == room_id))).first()
    return Room(**row._mapping) if row else None


async def list_rooms(conn: AsyncConnection, *, public_only: bool = False) -> list[Room]:
    query = select(rooms).order_by(rooms.c.created_ts)
    if public_only:
        query = query.where(rooms.c.is_public)
    return [Room(**r._mapping) for r in await conn.execute(query)]


async def set_room_public(conn: AsyncConnection, room_id: str, is_public: bool) -> None:
    await conn.execute(update(rooms).where(rooms.c.room_id == room_id).values(is_public=is_public))


# ------------------------------------------------------------------ current state


async def get_current_state(conn: AsyncConnection, room_id: str) -> dict[StateKey, str]:
    rows = await conn.execute(
        select(current_state.c.type, current_state.c.state_key, current_state.c.event_id).where(
            current_state.c.room_id == room_id
        )
    )
    return {(r.type, r.state_key): r.event_id for r in rows}


async def rooms_with_state(conn: AsyncConnection, event_type: str) -> list[str]:
    """The rooms whose current state has an event of ``event_type`` (any state key)."""
    rows = await conn.execute(
        select(current_state.c.room_id)
        .where(current_state.c.type == event_type)
        .distinct()
        .order_by(current_state.c.room_id)
    )
    return [r.room_id for r in rows]


async def update_current_state(
    conn: AsyncConnection, room_id: str, changes: Mapping[StateKey, str | None], stream_id: int
) -> None:
    """Apply ``changes`` to the current state and record them in the state delta stream."""
    if changes:
        recording().room_state.mark(room_id, stream_id)
        await conn.execute(
            insert(state_deltas),
            [
                {
                    "stream_id": stream_id,
                    "room_id": room_id,
                    "type": t,
                    "state_key": k,
                    "event_id": e,
                }
                for (t, k), e in changes.items()
            ],
        )
    for (event_type, state_key), event_id in changes.items():
        await conn.execute(
            delete(current_state).where(
                current_state.c.room_id == room_id,
                current_state.c.type == event_type,
                current_state.c.state_key == state_key,
            )
        )
        if event_id is not None:
            await conn.execute(
                insert(current_state).values(
                    room_id=room_id, type=event_type, state_key=state_key, event_id=event_id
                )
            )


async def state_changes_after(
    conn: AsyncConnection, room_id: str, after: int, upto: int
) -> set[StateKey]:
    """The (type, state_key) pairs of the room's current state changed in (after, upto]."""
    rows = await conn.execute(
        select(state_deltas.c.type, state_deltas.c.state_key).where(
            state_deltas.c.room_id == room_id,
            state_deltas.c.stream_id > after,
            state_deltas.c.stream_id <= upto,
        )
    )
    return {(r.type, r.state_key) for r in rows}


# ------------------------------------------------------------------ memberships


async def set_membership(
    conn: AsyncConnection,
    room_id: str,
    user_id: str,
    membership: str,
    event_id: str,
    stream_ordering: int,
) -> None:
    recording().memberships.mark(user_id, stream_ordering)
    await conn.execute(
        delete(memberships).where(
            memberships.c.room_id == room_id, memberships.c.user_id == user_id
        )
    )
    await conn.execute(
        insert(memberships).values(
            room_id=room_id,
            user_id=user_id,
            membership=membership,
            event_id=event_id,
            stream_ordering=stream_ordering,
            forgotten=False,
        )
    )


async def forget(conn: AsyncConnection, room_id: str, user_id: str, position: int) -> None:
    """Hide a left room from the user; ``position`` (allocated, no row of its own) marks
    the change so that cached memberships are read again."""
    recording().memberships.mark(user_id, position)
    await conn.execute(
        update(memberships)
        .where(memberships.c.room_id == room_id, memberships.c.user_id == user_id)
        .values(forgotten=True)
    )


async def memberships_of_user(
    conn: AsyncConnection, user_id: str, kinds: Sequence[str] | None = None
) -> list[Membership]:
    query = select(memberships).where(memberships.c.user_id == user_id)
    if kinds:
        query = query.where(memberships.c.membership.in_(list(kinds)))
    return [Membership(**r._mapping) for r in await conn.execute(query)]


async def members_of_room(
    conn: AsyncConnection, room_id: str, kinds: Sequence[str] | None = None
) -> list[Membership]:
    query = select(memberships).where(memberships.c.room_id == room_id)
    if kinds:
        query = query.where(memberships.c.membership.in_(list(kinds)))
    return [
        Membership(**r._mapping) for r in await conn.execute(query.order_by(memberships.c.user_id))
    ]


async def get_membership(conn: AsyncConnection, room_id: str, user_id: str) -> Membership | None:
    row = (
        await conn.execute(
            select(memberships).where(
                memberships.c.room_id == room_id, memberships.c.user_id == user_id
            )
        )
    ).first()
    return Membership(**row._mapping) if row else None


# ------------------------------------------------------------------ aliases


async def get_alias(conn: AsyncConnection, alias: str) -> str | None:
    row = (
        await conn.execute(select(room_aliases.c.room_id).where(room_aliases.c.alias == alias))
    ).first()
    return row.room_id if row else None


async def insert_alias(conn: AsyncConnection, alias: str, room_id: str, creator: str) -> None:
    await conn.execute(insert(room_aliases).values(alias=alias, room_id=room_id, creator=creator))


async def delete_alias(conn: AsyncConnection, alias: str) -> None:
    await conn.execute(delete(room_aliases).where(room_aliases.c.alias == alias))


async def aliases_of_room(conn: AsyncConnection, room_id: str) -> list[str]:
    rows = await conn.execute(
        select(room_aliases.c.alias)
        .where(room_aliases.c.room_id == room_id)
        .order_by(room_aliases.c.alias)
    )
    return [r.alias for r in rows]


async def alias_creator(conn: AsyncConnection, alias: str) -> str | None:
    row = (
        await conn.execute(select(room_aliases.c.creator).where(room_aliases.c.alias == alias))
    ).first()
    return row.creator if row else None


async def move_aliases(conn: AsyncConnection, old_room_id: str, new_room_id: str) -> None:
    """Point every alias of a room at another (a room upgrade)."""
    await conn.execute(
        update(room_aliases)
        .where(room_aliases.c.room_id == old_room_id)
        .values(room_id=new_room_id)
    )
