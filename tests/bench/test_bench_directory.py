"""Smoke run of ``kairan bench directory`` with small counts (figures only, no timing
asserted): four nodes, the import, local and federated searches that find staff."""

from __future__ import annotations

from homeserver.municipal.directory import csvfile
from interop.bench.directory import measure, report, staff_csv


async def test_directory_benchmark_reports_local_and_federated_figures() -> None:
    figures = await measure(staff_per_node=60, rounds=8, postgres=None)
    assert (figures["nodes"], figures["staff"]) == (4, 240)
    assert len(figures["local"]) == len(figures["federated"]) == 8
    # The federated searches found staff of the other nodes too.
    assert figures["federated_found"] > figures["local_found"] > 0
    text = report(figures)
    assert "local search      p50" in text and "federated search  p50" in text


def test_generated_staff_files_are_valid() -> None:
    for town in range(4):
        parsed = csvfile.parse(staff_csv(town, 500), "bench.example")
        assert parsed.errors == [] and len(parsed.rows) == 500
