"""The groups feature's tables: the groups this node made, their themed rooms, and the
requests ``kairan group`` hands to the running node.

A request is a row the command writes (``pending``); the node claims it (``working``),
carries it out and writes the outcome (``done`` with the result, or ``failed`` with the
error).  The command withdraws a request no node claimed in time (deletes it while still
``pending``), so a request is carried out once or not at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, Column, MetaData, String, Table, Text, delete, select, update

metadata = MetaData()

groups = Table(
    "consortium_groups",
    metadata,
    Column("space_id", String(255), primary_key=True),
    Column("consortium_id", String(64), nullable=False),
    Column("name", Text, nullable=False),
    Column("creator", String(255), nullable=False),
    Column("created_ts", BigInteger, nullable=False),
)

group_rooms = Table(
    "consortium_group_rooms",
    metadata,
    Column("space_id", String(255), primary_key=True),
    Column("room_id", String(255), primary_key=True),
    Column("name", Text, nullable=False),
    Column("added_ts", BigInteger, nullable=False),
)

requests = Table(
    "consortium_group_requests",
    metadata,
    Column("request_id", String(64), primary_key=True),
    #: The request as JSON: {"action": "create" | "add_room", ...}.
    Column("body", Text, nullable=False),
    Column("state", String(16), nullable=False),
    #: The outcome as JSON, once done or failed.
    Column("result", Text, nullable=True),
    Column("created_ts", BigInteger, nullable=False),
)

PENDING, WORKING, DONE, FAILED = "pending", "working", "done", "failed"


@dataclass(frozen=True)
class Group:
    space_id: str
    consortium_id: str
    name: str
    creator: str
    created_ts: int
    #: (room ID, name) of each themed room, in the order they were added.
    rooms: tuple[tuple[str, str], ...]


async def insert_group(
    conn: Any, space_id: str, consortium_id: str, name: str, creator: str, ts: int
) -> None:
    await conn.execute(
        groups.insert().values(
            space_id=space_id,
            consortium_id=consortium_id,
            name=name,
            creator=creator,
            created_ts=ts,
        )
    )


async def insert_room(conn: Any, space_id: str, room_id: str, name: str, ts: int) -> None:
    await conn.execute(
        group_rooms.insert().values(space_id=space_id, room_id=room_id, name=name, added_ts=ts)
    )


async def list_groups(conn: Any, space_id: str | None = None) -> list[Group]:
    query = select(groups).order_by(groups.c.created_ts, groups.c.space_id)
    rooms_query = select(group_rooms).order_by(group_rooms.c.added_ts, group_rooms.c.room_id)
    if space_id is not None:
        query = query.where(groups.c.space_id == space_id)
        rooms_query = rooms_query.where(group_rooms.c.space_id == space_id)
    found: dict[str, list[tuple[str, str]]] = {}
    for row in (await conn.execute(rooms_query)).all():
        found.setdefault(row.space_id, []).append((row.room_id, row.name))
    return [
        Group(
            r.space_id,
            r.consortium_id,
            r.name,
            r.creator,
            int(r.created_ts),
            tuple(found.get(r.space_id, ())),
        )
        for r in (await conn.execute(query)).all()
    ]


# ------------------------------------------------------------------ requests


async def add_request(conn: Any, request_id: str, body: str, ts: int) -> None:
    await conn.execute(
        requests.insert().values(request_id=request_id, body=body, state=PENDING, created_ts=ts)
    )


async def pending_requests(conn: Any) -> list[tuple[str, str]]:
    rows = await conn.execute(
        select(requests.c.request_id, requests.c.body)
        .where(requests.c.state == PENDING)
        .order_by(requests.c.created_ts, requests.c.request_id)
    )
    return [(str(r[0]), str(r[1])) for r in rows.all()]


async def claim(conn: Any, request_id: str) -> bool:
    """Take a pending request (False: withdrawn, or taken already)."""
    result = await conn.execute(
        update(requests)
        .where(requests.c.request_id == request_id, requests.c.state == PENDING)
        .values(state=WORKING)
    )
    return bool(result.rowcount == 1)


async def finish(conn: Any, request_id: str, state: str, result: str) -> None:
    await conn.execute(
        update(requests)
        .where(requests.c.request_id == request_id)
        .values(state=state, result=result)
    )


async def withdraw(conn: Any, request_id: str) -> bool:
    """Delete a request no node has claimed (False: a node has it)."""
    result = await conn.execute(
        delete(requests).where(requests.c.request_id == request_id, requests.c.state == PENDING)
    )
    return bool(result.rowcount == 1)


async def request_state(conn: Any, request_id: str) -> tuple[str, str | None] | None:
    row = (
        await conn.execute(
            select(requests.c.state, requests.c.result).where(requests.c.request_id == request_id)
        )
    ).first()
    return None if row is None else (str(row[0]), None if row[1] is None else str(row[1]))


async def forget_request(conn: Any, request_id: str) -> None:
    await conn.execute(delete(requests).where(requests.c.request_id == request_id))
