"""Smoke run of ``kairan bench federation`` with small counts, Kairan -> Kairan only.

It starts its own two Kairan nodes (never Synapse), whatever ``--pairs`` selects for the
scenarios.  It checks that the command ran, printed every figure and that every message
arrived; it judges no time.
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
