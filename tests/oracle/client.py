"""Client of ``synapse_oracle.py``: runs it in Synapse's own virtualenv and talks JSON lines.

Synapse is never imported here; this module only starts a subprocess.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from interop.synapse_env import ensure_synapse_venv

ORACLE_SCRIPT = Path(__file__).with_name("synapse_oracle.py")


class OracleError(RuntimeError):
    """The oracle process died or answered out of protocol."""


class SynapseOracle:
    """A running ``synapse_oracle.py`` process.

    ``request(op, **fields)`` sends one request and returns the answer dict
    (``{"ok": True, "result": ...}`` or ``{"ok": False, "error": ...}``);
    ``batch(requests)`` sends many at once and returns their answers in order.
    """

    def __init__(self, python: Path | str | None = None) -> None:
        self.python = str(python) if python is not None else str(ensure_synapse_venv())
        self._proc = subprocess.Popen(
            [self.python, str(ORACLE_SCRIPT)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            bufsize=1,
        )
        self._lock = threading.Lock()
        self._stderr: list[str] = []
        self._stderr_thread = threading.Thread(target=self._drain_stderr, daemon=True)
        self._stderr_thread.start()
        self.version: str = self.call("version")

    def _drain_stderr(self) -> None:
        assert self._proc.stderr is not None
        for line in self._proc.stderr:
            self._stderr.append(line)
            del self._stderr[:-200]

    def _died(self) -> OracleError:
        tail = "".join(self._stderr[-40:])
        return OracleError(f"Synapse oracle exited (code {self._proc.poll()}):\n{tail}")

    def batch(self, requests: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Send every request, then read as many answers; answers keep the order."""
        if not requests:
            return []
        stdin, stdout = self._proc.stdin, self._proc.stdout
        assert stdin is not None and stdout is not None
        lines = [
            json.dumps({**r, "id": i}, ensure_ascii=True) + "\n" for i, r in enumerate(requests)
        ]
        with self._lock:
            write_error: list[BaseException] = []

            def write() -> None:
                try:
                    for line in lines:
                        stdin.write(line)
                    stdin.flush()
                except (BrokenPipeError, OSError) as e:
                    write_error.append(e)

            writer = threading.Thread(target=write, daemon=True)
            writer.start()
            answers: list[dict[str, Any]] = []
            for i in range(len(lines)):
                raw = stdout.readline()
                if not raw:
                    writer.join(timeout=1)
                    raise self._died()
                answer = json.loads(raw)
                if answer.get("id") != i:
                    raise OracleError(f"answer out of order: expected id {i}, got {answer!r}")
                answers.append(answer)
            writer.join()
            if write_error:
                raise self._died() from write_error[0]
        return answers

    def request(self, op: str, **fields: Any) -> dict[str, Any]:
        return self.batch([{"op": op, **fields}])[0]

    def call(self, op: str, **fields: Any) -> Any:
        """Like :meth:`request` but returns the result, raising on an error answer."""
        answer = self.request(op, **fields)
        if not answer["ok"]:
            raise OracleError(f"oracle {op} failed: {answer['error']}")
        return answer["result"]

    def results(self, requests: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        return self.batch(list(requests))

    def close(self) -> None:
        if self._proc.poll() is None:
            assert self._proc.stdin is not None
            with contextlib.suppress(OSError):
                self._proc.stdin.close()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()

    def __enter__(self) -> SynapseOracle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
