"""Smoke run of ``kairan bench search`` with tiny counts (figures only, no timing
asserted): the corpus loaded into a Kairan node's storage, the queries over HTTPS, every
match found and every result holding its query."""

from __future__ import annotations

from interop.bench.search import SearchBenchOptions, run
from interop.bench.search_corpus import QUERIES, ground_truth, messages


def test_search_benchmark_reports_recall_and_latency() -> None:
    lines: list[str] = []
    options = SearchBenchOptions(messages=400, rooms=3, rounds=1, kairan_only=True)
    [kairan] = run(options, lines.append)
    assert kairan.truth == ground_truth(list(messages(400)), QUERIES)
    assert kairan.hits == kairan.truth and sum(kairan.truth.values()) > 0
    assert kairan.returned > 0 and kairan.wrong == 0
    assert all(len(kairan.latencies[q]) == 1 for q in QUERIES)
    assert "mean recall 100.0%" in lines[-1]


def test_corpus_is_deterministic_and_grows_by_appending() -> None:
    assert list(messages(50)) == list(messages(100))[:50]
    assert len(set(messages(200))) > 150
