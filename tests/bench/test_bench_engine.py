"""Smoke run of the engine benchmark: every figure is measured and printed (no timing asserted)."""

from __future__ import annotations

from interop.bench import engine as bench


def test_engine_benchmark_reports_every_figure() -> None:
    figures = bench.measure(seconds=0.02, stateres_repeat=1)
    for name in (
        "raw_ed25519_verify_per_s",
        "pdu_verify_per_s",
        "pdu_verify_vs_raw",
        "event_create_sign_per_s",
        "stateres_v11_ms",
        "stateres_v12_ms",
    ):
        assert figures[name] > 0, name
    text = bench.report(figures)
    assert "full PDU verification" in text and "state resolution, room 12" in text
