"""Pytest wiring of the interop suite: the ``--pairs`` option and one cluster per pair.

Pairs (A-B) come from ``--pairs`` or ``KAIRAN_INTEROP_PAIRS`` (default ``synapse-synapse``;
``all`` for the four).  Every scenario is parameterised over the selected pairs; a pair's
three nodes (A, B, and C of B's kind) start once per session, when its first scenario
runs, and stop after its last.  A failing scenario's report ends with the nodes' log tails.
"""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator, Generator, Iterator
from types import FrameType

import pytest

from interop.harness import Harness
from interop.tests.support import DEFAULT_PAIRS, PAIRS, Cluster, Users, parse_pairs

KEPT: list[str] = []
"""Data directories left behind (a scenario failed, or KAIRAN_INTEROP_KEEP=1)."""


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--pairs",
        default=os.environ.get("KAIRAN_INTEROP_PAIRS", DEFAULT_PAIRS),
        help=f"server pairs A-B to run: all, or a comma-separated list of {', '.join(PAIRS)} "
        f"(default: $KAIRAN_INTEROP_PAIRS or {DEFAULT_PAIRS})",
    )


def pytest_configure(config: pytest.Config) -> None:
    # A SIGTERM (e.g. from ``kairan interop run``) becomes an interrupt, so the session's
    # finalizers stop every node; the harness's atexit hook is the second line of defence.
    def interrupt(signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGHUP, interrupt)


def selected_pairs(config: pytest.Config) -> list[str]:
    try:
        return parse_pairs(str(config.getoption("--pairs")))
    except ValueError as e:
        raise pytest.UsageError(str(e)) from None


def pytest_report_header(config: pytest.Config) -> str:
    return f"interop pairs: {', '.join(selected_pairs(config))}"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "pair" in metafunc.fixturenames:
        pairs = selected_pairs(metafunc.config)
        metafunc.parametrize("pair", pairs, indirect=True, scope="session", ids=pairs)


@pytest.fixture(scope="session")
def pair(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture(scope="session")
def cluster(pair: str) -> Iterator[Cluster]:
    a_kind, b_kind = PAIRS[pair]
    harness = Harness(log_level=os.environ.get("KAIRAN_INTEROP_LOG_LEVEL", "INFO"))
    try:
        a = harness.add(a_kind, f"A-{a_kind}")
        b = harness.add(b_kind, f"B-{b_kind}")
        c = harness.add(b_kind, f"C-{b_kind}")
        harness.start_all()
        found = Cluster(pair, harness, a, b, c)
        yield found
        if found.failed or harness.keep:
            harness.keep = True
            KEPT.append(f"{pair}: {harness.root}")
    finally:
        harness.close()


@pytest.fixture
async def users(cluster: Cluster) -> AsyncIterator[Users]:
    registry = Users(cluster)
    try:
        yield registry
    finally:
        await registry.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed:
        funcargs = getattr(item, "funcargs", {})
        found = funcargs.get("cluster")
        if isinstance(found, Cluster):
            found.failed = True
            lines = int(os.environ.get("KAIRAN_INTEROP_LOG_LINES", "30"))
            report.sections.append(
                (f"homeserver logs ({found.pair}, {found.harness.root})", found.harness.logs(lines))
            )
    return report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if KEPT:
        terminalreporter.section("interop data directories kept (logs inside)")
        for line in KEPT:
            terminalreporter.write_line(line)
