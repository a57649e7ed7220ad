"""The conformance plugin (tests/homeserver/conformance.py) on small suites of its own: what
runs without the Matrix spec, that a wrong path is one line, and that a conformance run
which validated nothing fails instead of passing."""

from __future__ import annotations

from pathlib import Path

import pytest

SUITE = """
import pytest

def test_plain():
    assert 1 + 1 == 2

def test_with_validation(openapi):
    assert openapi is None or openapi.root.is_dir()

@pytest.mark.conformance
def test_only_conformance(spec):
    assert spec.operations == []
"""


REPO = Path(__file__).resolve().parents[2]
INI = (
    "[pytest]\nasyncio_default_fixture_loop_scope = function\n"
    "markers =\n    conformance: c\n    openapi: o\n"
)


def run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, *args: str) -> pytest.RunResult:
    pytester.makeini(INI)
    pytester.makepyfile(test_suite=SUITE)
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    return pytester.runpytest_subprocess("-p", "tests.homeserver.conformance", *args)


def fake_spec(tmp_path: Path) -> Path:
    root = tmp_path / "matrix-spec"
    (root / "data" / "api" / "client-server").mkdir(parents=True)
    return root


def test_without_a_spec_conformance_tests_are_deselected(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KAIRAN_MATRIX_SPEC", raising=False)
    result = run(pytester, monkeypatch, "-v")
    result.assert_outcomes(passed=2, deselected=1)
    result.stdout.fnmatch_lines(["conformance: off (no Matrix spec; set KAIRAN_MATRIX_SPEC*"])
    assert "test_only_conformance" not in result.stdout.str()


def test_a_wrong_spec_path_is_one_line(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("KAIRAN_MATRIX_SPEC", str(tmp_path / "nowhere"))
    result = run(pytester, monkeypatch)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.stderr.lines if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("ERROR: Matrix spec not found"), errors


def test_a_run_that_validates_nothing_fails(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("KAIRAN_MATRIX_SPEC", raising=False)
    result = run(
        pytester,
        monkeypatch,
        f"--matrix-spec={fake_spec(tmp_path)}",
        "-m",
        "conformance or openapi",
    )
    # Both tests pass, but no response went through the validator: that is no conformance run.
    result.assert_outcomes(passed=2, deselected=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["conformance: FAILED: *no response was validated"])
