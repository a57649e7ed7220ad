"""State groups: the state of a room at any event, stored as deltas by binary lifting.

A state group ``g`` at chain depth ``d`` (its parent's depth + 1) stores its difference
from the ancestor at depth ``d & (d - 1)`` (``d`` with its lowest set bit cleared; the
empty state when that is 0).  Loading any state therefore reads at most log2(d) deltas,
and the deltas of a chain of n state changes hold O(n log n) rows in all: the table grows
with the number of state changes, never with events times room size.  Recently used full
states are kept in memory.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from homeserver.storage.schema import state_group_deltas, state_groups

StateKey = tuple[str, str]
StateMap = dict[StateKey, str]


V = TypeVar("V")


def _remember(cache: OrderedDict[int, V], key: int, value: V, limit: int) -> None:
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > limit:
        cache.popitem(last=False)


@dataclass(frozen=True)
class GroupInfo:
    id: int
    room_id: str
    parent_id: int | None
    base_id: int | None
    chain_depth: int


class StateStore:
    def __init__(self, cache_size: int = 256) -> None:
        self._next_id = 0
        self._groups: dict[int, GroupInfo] = {}
        self._deltas: OrderedDict[int, dict[StateKey, str | None]] = OrderedDict()
        self._states: OrderedDict[int, StateMap] = OrderedDict()
        self._cache_size = cache_size

    async def load(self, conn: AsyncConnection) -> None:
        highest = (await conn.execute(select(func.max(state_groups.c.id)))).scalar()
        self._next_id = int(highest or 0)

    # ------------------------------------------------------------- reading

    async def _info(self, conn: AsyncConnection, group_id: int) -> GroupInfo:
        info = self._groups.get(group_id)
        if info is None:
            row = (
                await conn.execute(select(state_groups).where(state_groups.c.id == group_id))
            ).one()
            info = GroupInfo(row.id, row.room_id, row.parent_id, row.base_id, row.chain_depth)
            self._groups[group_id] = info
        return info

    async def _delta(self, conn: AsyncConnection, group_id: int) -> dict[StateKey, str | None]:
        delta = self._deltas.get(group_id)
        if delta is None:
            rows = await conn.execute(
                select(
                    state_group_deltas.c.type,
                    state_group_deltas.c.state_key,
                    state_group_deltas.c.event_id,
                ).where(state_group_deltas.c.state_group == group_id)
            )
            delta = {(r.type, r.state_key): r.event_id for r in rows}
            _remember(self._deltas, group_id, delta, self._cache_size * 16)
        return delta

    async def get_state(self, conn: AsyncConnection, group_id: int | None) -> StateMap:
        """The full state of a group (a new dict the caller may change)."""
        if group_id is None:
            return {}
        cached = self._states.get(group_id)
        if cached is not None:
            self._states.move_to_end(group_id)
            return dict(cached)
        chain: list[int] = []
        current: int | None = group_id
        state: StateMap = {}
        while current is not None:
            hit = self._states.get(current)
            if hit is not None:
                state = dict(hit)
                break
            chain.append(current)
            current = (await self._info(conn, current)).base_id
        for gid in reversed(chain):
            for key, event_id in (await self._delta(conn, gid)).items():
                if event_id is None:
                    state.pop(key, None)
                else:
                    state[key] = event_id
        _remember(self._states, group_id, dict(state), self._cache_size)
        return state

    async def parent(self, conn: AsyncConnection, group_id: int | None) -> int | None:
        return (await self._info(conn, group_id)).parent_id if group_id is not None else None

    async def get_value(
        self, conn: AsyncConnection, group_id: int | None, key: StateKey
    ) -> str | None:
        """One entry of a group's state, reading only the deltas on its base path."""
        current = group_id
        while current is not None:
            full = self._states.get(current)
            if full is not None:
                return full.get(key)
            delta = await self._delta(conn, current)
            if key in delta:
                return delta[key]
            current = (await self._info(conn, current)).base_id
        return None

    def cached_value(self, group_id: int | None, key: StateKey) -> tuple[bool, str | None]:
        """``get_value`` from what is in memory only: (False, None) when a delta or a
        group's links on the path are not (the caller then reads with a connection)."""
        current = group_id
        while current is not None:
            full = self._states.get(current)
            if full is not None:
                return True, full.get(key)
            delta = self._deltas.get(current)
            info = self._groups.get(current)
            if delta is None or (key not in delta and info is None):
                return False, None
            if key in delta:
                return True, delta[key]
            assert info is not None
            current = info.base_id
        return True, None

    # ------------------------------------------------------------- writing

    async def create_group(
        self,
        conn: AsyncConnection,
        room_id: str,
        parent_id: int | None,
        changes: Mapping[StateKey, str | None],
    ) -> int:
        """A new group: the parent's state with ``changes`` applied (None removes a key)."""
        parent = await self._info(conn, parent_id) if parent_id is not None else None
        depth = parent.chain_depth + 1 if parent else 1
        base_depth = depth & (depth - 1)
        # The difference between the parent and the base is the union of the deltas on the
        # path of base links from the parent down to the base (the nearest wins).
        delta: dict[StateKey, str | None] = {}
        base_id: int | None = None
        node = parent
        path: list[GroupInfo] = []
        while node is not None and node.chain_depth > base_depth:
            path.append(node)
            node = await self._info(conn, node.base_id) if node.base_id is not None else None
        if base_depth > 0:
            assert node is not None and node.chain_depth == base_depth
            base_id = node.id
        for info in reversed(path):
            delta.update(await self._delta(conn, info.id))
        delta.update(changes)
        if base_id is None:
            delta = {k: v for k, v in delta.items() if v is not None}
        self._next_id += 1
        group_id = self._next_id
        await conn.execute(
            insert(state_groups).values(
                id=group_id,
                room_id=room_id,
                parent_id=parent_id,
                base_id=base_id,
                chain_depth=depth,
            )
        )
        if delta:
            await conn.execute(
                insert(state_group_deltas),
                [
                    {"state_group": group_id, "type": t, "state_key": k, "event_id": e}
                    for (t, k), e in delta.items()
                ],
            )
        self._groups[group_id] = GroupInfo(group_id, room_id, parent_id, base_id, depth)
        _remember(self._deltas, group_id, delta, self._cache_size * 16)
        if parent_id is not None and parent_id in self._states:
            full = dict(self._states[parent_id])
            for key, event_id in changes.items():
                if event_id is None:
                    full.pop(key, None)
                else:
                    full[key] = event_id
            _remember(self._states, group_id, full, self._cache_size)
        return group_id

    def forget_cache(self) -> None:
        """Drop the in-memory caches (after a failed transaction, or for tests)."""
        self._groups.clear()
        self._deltas.clear()
        self._states.clear()
