"""A private virtualenv holding a pinned Synapse, used as an oracle in a separate process.

Synapse (AGPL) is never imported into Kairan's packages or into the project's own
virtualenv: test code runs scripts with the Python this module returns.

Pure standard library and no project imports, so the interop harness can reuse it.

The venv lives under ``$KAIRAN_CACHE_DIR/synapse-venv`` (default
``~/.cache/kairan/synapse-venv``).  A marker file is written only after pip has finished
and an import check has passed, so an interrupted install is detected and redone.

Usage: ``python -m interop.synapse_env`` prints the path of the venv's python.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
import venv
from pathlib import Path

SYNAPSE_VERSION = "1.163.2"
"""The pinned matrix-synapse release the oracle runs."""

MARKER_NAME = "kairan-synapse-ready.json"


def default_root() -> Path:
    """Where the venv is kept unless a root is given."""
    cache = os.environ.get("KAIRAN_CACHE_DIR")
    base = Path(cache) if cache else Path.home() / ".cache" / "kairan"
    return base / "synapse-venv"


def _python_of(root: Path) -> Path:
    return root / "bin" / "python"


def _marker_ok(root: Path) -> bool:
    marker = root / MARKER_NAME
    try:
        data = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        isinstance(data, dict)
        and data.get("matrix-synapse") == SYNAPSE_VERSION
        and _python_of(root).exists()
    )


def _run(cmd: list[str], log: Path) -> None:
    with log.open("ab") as out:
        out.write(("\n$ " + " ".join(cmd) + "\n").encode())
        out.flush()
        proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, check=False)
    if proc.returncode != 0:
        tail = log.read_text(encoding="utf-8", errors="replace")[-4000:]
        raise RuntimeError(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{tail}")


def _install(root: Path) -> None:
    if root.exists():
        shutil.rmtree(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    venv.EnvBuilder(with_pip=True, clear=True).create(root)
    py = str(_python_of(root))
    log = root / "install.log"
    _run(
        [
            py,
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            f"matrix-synapse=={SYNAPSE_VERSION}",
        ],
        log,
    )
    _run(
        [
            py,
            "-c",
            "import synapse, synapse.event_auth, synapse.state.v2; print(synapse.__version__)",
        ],
        log,
    )
    marker = root / MARKER_NAME
    tmp = marker.with_suffix(".tmp")
    tmp.write_text(
        json.dumps({"matrix-synapse": SYNAPSE_VERSION, "created": time.time()}),
        encoding="utf-8",
    )
    os.replace(tmp, marker)


def ensure_synapse_venv(root: Path | None = None) -> Path:
    """Create (once) the Synapse venv and return the path of its python.

    Reuses an existing venv whose marker names the pinned version; otherwise (missing,
    half-finished or another version) it is rebuilt from scratch.  Concurrent callers are
    serialised with a lock file beside the venv.  Raises ``RuntimeError`` on failure.
    """
    root = Path(root) if root is not None else default_root()
    root = root.expanduser().absolute()
    if _marker_ok(root):
        return _python_of(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    lock_path = root.parent / (root.name + ".lock")
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not _marker_ok(root):
                _install(root)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return _python_of(root)


def main() -> int:
    try:
        print(ensure_synapse_venv())
    except RuntimeError as e:
        print(e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
