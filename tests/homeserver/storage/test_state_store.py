"""State groups by binary lifting: any state comes back exactly, and storage stays small."""

from __future__ import annotations

import random

from sqlalchemy import func, select

from homeserver.storage.database import open_database
from homeserver.storage.schema import state_group_deltas
from homeserver.storage.state import StateMap, StateStore


def _apply(state: StateMap, changes: dict[tuple[str, str], str | None]) -> StateMap:
    new = dict(state)
    for key, value in changes.items():
        if value is None:
            new.pop(key, None)
        else:
            new[key] = value
    return new


async def test_random_trees_round_trip(db_url: str) -> None:
    """A random tree of groups (forks included): every group's state equals the naive one."""
    rng = random.Random(20261122)
    db = await open_database(db_url)
    try:
        store = StateStore(cache_size=4)  # tiny cache: most lookups go to the database
        expected: dict[int, StateMap] = {}
        groups: list[int] = []
        async with db.write() as conn:
            for step in range(400):
                parent = (
                    rng.choice(groups)
                    if groups and rng.random() < 0.3
                    else (groups[-1] if groups else None)
                )
                changes: dict[tuple[str, str], str | None] = {}
                for _ in range(rng.choice([1, 1, 1, 2, 5])):
                    key = ("m.room.member", f"@u{rng.randrange(60)}:x")
                    removable = parent is not None and key in expected[parent]
                    changes[key] = (
                        None if removable and rng.random() < 0.1 else f"$e{step}_{len(changes)}"
                    )
                group = await store.create_group(conn, "!r", parent, changes)
                expected[group] = _apply(expected[parent] if parent is not None else {}, changes)
                groups.append(group)
        fresh = StateStore(cache_size=4)
        async with db.read() as conn:
            await fresh.load(conn)
            for group in rng.sample(groups, 120):
                assert await fresh.get_state(conn, group) == expected[group]
                key = ("m.room.member", f"@u{rng.randrange(60)}:x")
                assert await fresh.get_value(conn, group, key) == expected[group].get(key)
    finally:
        await db.close()


async def test_storage_grows_with_changes_not_room_size(db_url: str) -> None:
    """1,000 joins in a chain: O(n log n) delta rows, far below the n^2/2 of snapshots."""
    db = await open_database(db_url)
    try:
        store = StateStore()
        parent = None
        async with db.write() as conn:
            for i in range(1000):
                parent = await store.create_group(
                    conn, "!big", parent, {("m.room.member", f"@u{i}:x"): f"$j{i}"}
                )
            rows = (
                await conn.execute(select(func.count()).select_from(state_group_deltas))
            ).scalar()
            state = await StateStore().get_state(conn, parent)
        assert len(state) == 1000
        assert rows is not None and rows <= 1000 * 11  # n * (log2(n) + 1)
        assert rows < 1000 * 1000 // 20
    finally:
        await db.close()
