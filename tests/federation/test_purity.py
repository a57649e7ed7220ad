"""The protocol engine stays pure: importing it pulls in no I/O framework."""

from __future__ import annotations

import subprocess
import sys

import pytest

PURE_MODULES = [
    "federation.canonical",
    "federation.errors",
    "federation.events",
    "federation.identifiers",
    "federation.redaction",
    "federation.room_versions",
    "federation.signing",
    "federation.auth",
    "federation.state",
]
FORBIDDEN = ["asyncio", "aiohttp", "sqlalchemy", "socket", "homeserver", "cli"]


@pytest.mark.parametrize("module", PURE_MODULES)
def test_pure_module_imports_no_io(module: str) -> None:
    code = (
        f"import sys, {module}\n"
        f"bad = [m for m in {FORBIDDEN!r} if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "", f"{module} imports {result.stdout.strip()}"
