"""Smoke runs of ``kairan bench federation`` and ``kairan bench sliding-sync`` with small
counts, Kairan only.

Each starts its own Kairan nodes (never Synapse), whatever ``--pairs`` selects for the
scenarios.  They check that the command ran, printed every figure and that every message
arrived; they judge no time.
"""

from __future__ import annotations

from click.testing import CliRunner

from cli.main import main


def test_bench_federation_smoke() -> None:
    result = CliRunner().invoke(
        main,
        [
            "bench", "federation", "--messages", "50", "--latency-samples", "10",
            "--pairs", "kairan-kairan",
        ],
    )  # fmt: skip
    output = result.output
    assert result.exit_code == 0, output
    rows = [line.split() for line in output.splitlines() if line.startswith("kairan-kairan ")]
    assert len(rows) == 1, output
    # pair, latency p50, p99, msg/s end to end, accepted/s, arrived/sent, RSS A/B, peak A/B
    _pair, p50, p99, rate, accepted, arrived_sent, rss, peak = rows[0]
    for figure in (p50, p99, rate, accepted):
        assert float(figure) > 0, (figure, output)
    assert arrived_sent == "50/50", output
    for pair_of_mb in (rss, peak):
        a_mb, b_mb = pair_of_mb.split("/")
        assert int(a_mb) > 0 and int(b_mb) > 0, output
    assert "INCOMPLETE" not in output and "never arrived" not in output, output


def test_bench_sliding_sync_smoke() -> None:
    """``kairan bench sliding-sync`` on Kairan alone with 6 rooms and 3 samples: every
    figure printed, the list counts every room, no failure."""
    result = CliRunner().invoke(
        main,
        ["bench", "sliding-sync", "--rooms", "6", "--samples", "3", "--kinds", "kairan"],
    )
    output = result.output
    assert result.exit_code == 0, output
    rows = [line.split() for line in output.splitlines() if line.startswith("kairan ")]
    assert len(rows) == 1, output
    # server, first p50, p99, incremental p50, p99, whoami p50, misses, list count, rooms, setup s
    _server, *figures, misses, count, rooms, setup = rows[0]
    for figure in (*figures, setup):
        assert float(figure) > 0, (figure, output)
    assert int(misses) >= 0, output
    assert (count, rooms) == ("6", "6"), output
    assert "FAILED" not in output, output
