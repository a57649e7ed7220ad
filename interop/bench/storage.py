"""``kairan bench storage``: bytes on disk per event, and how state storage grows.

Builds a throwaway node (SQLite) with one room of N members (each join a state event,
plus some profile changes) and M messages, then prints the database size per event and
the rows of state storage per state change, the figures that show the database grows with
the number of events, not with events times room size.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

from sqlalchemy import func, select, text

from homeserver.config import load_config
from homeserver.node.app import build_services, close_services
from homeserver.node.setup import init_node
from homeserver.storage.schema import events, state_group_deltas, state_groups


async def measure(members: int, messages: int, senders: int = 20) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="kairan-bench-storage-") as tmp:
        directory = Path(tmp)
        init_node("127.0.0.1:18998", directory)
        services = await build_services(load_config(directory), fast_passwords=True)
        try:
            users = [await services.accounts.create_user(f"m{i}", "pw") for i in range(members)]
            room_id, _ = await services.handler.create_room(users[0], {"preset": "public_chat"})
            started = time.perf_counter()
            for user in users[1:]:
                await services.handler.join(user, room_id)
            joins_s = time.perf_counter() - started
            per_sender = messages // senders

            async def send(user: str) -> None:
                for i in range(per_sender):
                    await services.handler.send_message(
                        user, "BENCH", room_id, "m.room.message",
                        {"msgtype": "m.text", "body": f"連絡事項 {i}: 本日の訓練は予定どおり実施します。"},
                        f"b{i}",
                    )  # fmt: skip

            started = time.perf_counter()
            await asyncio.gather(*(send(u) for u in users[:senders]))
            send_s = time.perf_counter() - started
            async with services.db.engine.connect() as conn:
                await conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
                n_events = (
                    await conn.execute(select(func.count()).select_from(events))
                ).scalar() or 0
                n_state = (
                    await conn.execute(
                        select(func.count())
                        .select_from(events)
                        .where(events.c.state_key.is_not(None))
                    )
                ).scalar() or 0
                deltas = (
                    await conn.execute(select(func.count()).select_from(state_group_deltas))
                ).scalar() or 0
                groups = (
                    await conn.execute(select(func.count()).select_from(state_groups))
                ).scalar() or 0
        finally:
            await close_services(services)
        size = sum(p.stat().st_size for p in directory.glob("kairan.db*"))
    return {
        "members": float(members),
        "events": float(n_events),
        "state_events": float(n_state),
        "db_bytes": float(size),
        "bytes_per_event": size / max(1, n_events),
        "state_groups": float(groups),
        "state_delta_rows": float(deltas),
        "delta_rows_per_state_event": deltas / max(1, n_state),
        "naive_snapshot_rows": float(n_state) * (n_state + 1) / 2,
        "joins_per_s": (members - 1) / joins_s if joins_s else 0.0,
        "messages_per_s": (per_sender * senders) / send_s if send_s else 0.0,
    }


def report(figures: dict[str, float]) -> str:
    return "\n".join(
        [
            "Kairan storage benchmark (SQLite)",
            f"  room members                 {figures['members']:>12,.0f}",
            f"  events                       {figures['events']:>12,.0f}  ({figures['state_events']:,.0f} state events)",
            f"  database on disk             {figures['db_bytes'] / 1024 / 1024:>12,.1f} MiB",
            f"  bytes on disk per event      {figures['bytes_per_event']:>12,.0f}",
            f"  state groups                 {figures['state_groups']:>12,.0f}",
            f"  state delta rows             {figures['state_delta_rows']:>12,.0f}"
            f"  ({figures['delta_rows_per_state_event']:.1f} per state event; a full snapshot per"
            f" state event would be {figures['naive_snapshot_rows']:,.0f} rows)",
            f"  joins (one at a time)        {figures['joins_per_s']:>12,.0f} /s",
            f"  messages (20 senders)        {figures['messages_per_s']:>12,.0f} /s",
        ]
    )


def main(members: int, messages: int) -> None:
    print(report(asyncio.run(measure(members, messages))))
