"""``kairan interop run``: the interop suite under pytest, in a child process.

The child is ``python -m pytest interop/tests --pairs ...`` run from the repository root
(plain ``pytest`` collects ``tests/`` only).  A SIGTERM to this process is passed on to
the child, whose conftest turns it into an interrupt so that every node is stopped.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from interop import synapse_env
from interop.tests.support import PAIRS, parse_pairs

REPO_ROOT = Path(__file__).resolve().parent.parent
SUITE = REPO_ROOT / "interop" / "tests"


def synapse_venv_ready() -> bool:
    """Whether the pinned Synapse venv exists already (without creating it)."""
    root = synapse_env.default_root()
    try:
        marker = json.loads((root / synapse_env.MARKER_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        isinstance(marker, dict)
        and marker.get("matrix-synapse") == synapse_env.SYNAPSE_VERSION
        and (root / "bin" / "python").exists()
    )


def prepare_synapse(with_synapse: bool, echo: bool = True) -> Path | None:
    """Make sure the Synapse venv exists; create it (PyPI) only when ``with_synapse``."""
    if synapse_venv_ready():
        return synapse_env.ensure_synapse_venv()
    if not with_synapse:
        raise RuntimeError(
            "these pairs need Synapse, whose virtualenv is not there yet: pass --with-synapse "
            f"to create it (matrix-synapse=={synapse_env.SYNAPSE_VERSION} from PyPI, "
            f"in {synapse_env.default_root()})"
        )
    started = time.monotonic()
    python = synapse_env.ensure_synapse_venv()
    if echo:
        print(
            f"interop: created the Synapse virtualenv in {time.monotonic() - started:.1f}s",
            file=sys.stderr,
        )
    return python


def pytest_command(pairs: Sequence[str], extra: Sequence[str]) -> list[str]:
    return [
        sys.executable, "-m", "pytest", str(SUITE.relative_to(REPO_ROOT)),
        "-p", "no:cacheprovider", "--pairs", ",".join(pairs), "-v", "--durations=0",
        *extra,
    ]  # fmt: skip


def run_suite(
    pairs_text: str,
    *,
    with_synapse: bool = False,
    timeout: float | None = None,
    keep: bool = False,
    extra: Sequence[str] = (),
) -> int:
    """Run the scenarios on the pairs named by ``pairs_text``; returns pytest's exit code."""
    pairs = parse_pairs(pairs_text)
    if any("synapse" in PAIRS[p] for p in pairs):
        prepare_synapse(with_synapse)
    env = dict(os.environ)
    if timeout is not None:
        env["KAIRAN_INTEROP_TIMEOUT"] = str(timeout)
    if keep:
        env["KAIRAN_INTEROP_KEEP"] = "1"
    command = pytest_command(pairs, extra)
    print("interop: " + " ".join(command), file=sys.stderr)
    started = time.monotonic()
    child = subprocess.Popen(command, cwd=REPO_ROOT, env=env)

    def forward(signum: int, _frame: FrameType | None) -> None:
        if child.poll() is None:
            child.send_signal(signum)

    previous = signal.signal(signal.SIGTERM, forward)
    try:
        while True:
            try:
                code = child.wait()
                break
            except KeyboardInterrupt:
                # The child got the terminal's SIGINT too and is stopping its nodes.
                continue
    finally:
        signal.signal(signal.SIGTERM, previous)
    print(f"interop: pytest exited {code} after {time.monotonic() - started:.1f}s", file=sys.stderr)
    return code
