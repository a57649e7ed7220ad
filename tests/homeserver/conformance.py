"""The conformance run: responses validated against the Matrix spec's OpenAPI.

The spec's files are not part of this repository.  A run has them when the env var
``KAIRAN_MATRIX_SPEC`` or the option ``--matrix-spec`` names a checkout of
https://github.com/matrix-org/matrix-spec (``make conformance`` passes it); a path that is
no such checkout is a one-line usage error, never a reason to skip.

* Without the spec (``make test``, plain ``pytest``): :class:`ValidatingClient` is the plain
  test client and the tests assert what they assert themselves; tests marked
  ``conformance`` (their only purpose is to check the spec or the validator) are
  deselected, and the session header says so.
* With it: every test that takes the ``openapi`` fixture (directly or through a client
  fixture) validates its responses and carries the ``openapi`` marker, so that
  ``-m "conformance or openapi"`` selects exactly what the spec checks.  A session that
  ran such tests but validated no response fails: validation is never silently off.

Fixtures: ``openapi`` (the spec, or ``None`` when the run has none) and ``spec`` (the
spec; only for ``conformance`` tests).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.homeserver.openapi import ENV_VAR, OPTION, ClientServerSpec, SpecNotFound, spec_root

ROOT = pytest.StashKey[Path | None]()
LOADED = pytest.StashKey[ClientServerSpec]()
CHECKING = pytest.StashKey[int]()  # selected tests that validate responses


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        OPTION,
        default=None,
        help=f"matrix-spec checkout: validate responses against its OpenAPI (default: ${ENV_VAR})",
    )


def pytest_configure(config: pytest.Config) -> None:
    option = config.getoption(OPTION)
    raw, source = (option, OPTION) if option else (os.environ.get(ENV_VAR), f"${ENV_VAR}")
    try:
        config.stash[ROOT] = spec_root(raw, source) if raw else None
    except SpecNotFound as e:
        raise pytest.UsageError(str(e)) from None


def pytest_report_header(config: pytest.Config) -> str:
    root = config.stash[ROOT]
    if root is not None:
        return f"conformance: responses validated against the Matrix spec at {root}"
    return (
        f"conformance: off (no Matrix spec; set {ENV_VAR} or run 'make conformance'); "
        "tests marked conformance are deselected"
    )


@pytest.hookimpl(tryfirst=True)  # before -m filters by the markers added here
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    keep, drop = [], []
    for item in items:
        if "openapi" in getattr(item, "fixturenames", ()):
            item.add_marker("openapi")
        if config.stash[ROOT] is None and item.get_closest_marker("conformance"):
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_collection_finish(session: pytest.Session) -> None:
    if session.config.option.collectonly:
        return  # nothing runs, nothing to validate
    session.config.stash[CHECKING] = sum(
        1
        for item in session.items
        if item.get_closest_marker("openapi") or item.get_closest_marker("conformance")
    )


@pytest.fixture(scope="session")
def openapi(request: pytest.FixtureRequest) -> ClientServerSpec | None:
    """The Client-Server OpenAPI definitions when the run has them, else ``None``."""
    config = request.config
    root = config.stash[ROOT]
    if root is None:
        return None
    if LOADED not in config.stash:
        config.stash[LOADED] = ClientServerSpec(root)
    return config.stash[LOADED]


@pytest.fixture(scope="session")
def spec(openapi: ClientServerSpec | None) -> ClientServerSpec:
    """The Client-Server OpenAPI definitions; only ``conformance`` tests take this."""
    if openapi is None:
        pytest.fail(
            f"this test needs the Matrix spec: mark it conformance, or set {ENV_VAR}",
            pytrace=False,
        )
    return openapi


def _validated(config: pytest.Config) -> int:
    return config.stash[LOADED].validated if LOADED in config.stash else 0


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    if config.stash[ROOT] is None or not config.stash.get(CHECKING, 0):
        return
    if exitstatus == pytest.ExitCode.OK and _validated(config) == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    config = terminalreporter.config
    if config.stash[ROOT] is None or not config.stash.get(CHECKING, 0):
        return
    validated = _validated(config)
    if validated:
        terminalreporter.write_line(
            f"conformance: {validated} responses validated against the Matrix spec"
        )
    else:
        terminalreporter.write_line(
            "conformance: FAILED: tests that validate against the spec ran, "
            "but no response was validated",
            red=True,
        )
