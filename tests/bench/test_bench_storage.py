"""Smoke run of ``kairan bench storage`` with small counts (figures only, no timing asserted)."""

from __future__ import annotations

import math

from interop.bench.storage import measure, report


async def test_storage_benchmark_reports_every_figure() -> None:
    figures = await measure(members=40, messages=60)
    assert figures["members"] == 40
    assert figures["events"] >= 40 + 60
    # Each state change costs O(log n) delta rows, far from a full snapshot per change.
    assert figures["delta_rows_per_state_event"] <= math.log2(figures["state_events"]) + 2
    assert figures["state_delta_rows"] < figures["naive_snapshot_rows"] / 4
    text = report(figures)
    for label in ("bytes on disk per event", "state delta rows", "messages (20 senders)"):
        assert label in text
