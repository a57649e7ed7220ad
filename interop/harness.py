"""Start real Kairan and Synapse homeservers on loopback and stop them again.

Every node gets a free port on 127.0.0.1, the server name ``127.0.0.1:PORT`` (an explicit
port means no ``.well-known``/SRV, an IP literal means no DNS); with ``distinct_hosts`` each
node has a loopback address of its own instead (127.0.0.2, 127.0.0.3, ...: Linux routes all
of 127/8 to loopback), so that what matches hosts and ignores ports (server ACLs, member
lists) tells the nodes apart.  Each node also gets a fresh data directory
under the harness's root, and TLS on that one port with a certificate from the harness's
throwaway CA.  Both kinds verify their peers' certificates against that CA.

Black box: Kairan is run as ``python -m cli.main serve`` and Synapse from its own
virtualenv (:func:`interop.synapse_env.ensure_synapse_venv`); nothing here imports
``homeserver`` or ``federation``.

Every process started is stopped by :meth:`Harness.close` (SIGTERM, then SIGKILL after a
timeout), and by an ``atexit`` hook should the caller forget or crash.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from interop.certs import LOOPBACK_HOSTS, make_certs
from interop.node_configs import kairan_overrides, signing_key_line, synapse_config

NodeKind = Literal["kairan", "synapse"]
KINDS: tuple[NodeKind, ...] = ("kairan", "synapse")
LOOPBACK = "127.0.0.1"
REPO_ROOT = Path(__file__).resolve().parent.parent


class HarnessError(Exception):
    """A node could not be configured, started or stopped; the message says which and why."""


@dataclass
class Node:
    """One homeserver process (possibly stopped) and its data directory."""

    name: str
    kind: NodeKind
    port: int
    directory: Path
    command: list[str]
    env: dict[str, str]
    log_files: list[Path]
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    starts: int = 0
    #: The loopback address it listens on (its server name's host).
    host: str = LOOPBACK

    @property
    def server_name(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"https://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int | None:
        """The server process's PID while it runs (for /proc/PID/status), else None."""
        return self.process.pid if self.running and self.process is not None else None

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of each of the node's log files."""
        parts = []
        for path in self.log_files:
            try:
                text = path.read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            tail = text.splitlines()[-lines:]
            parts.append(f"--- {self.name} ({self.kind}, {self.server_name}) {path}\n")
            parts.append("\n".join(tail) + "\n")
        return "".join(parts)


# ---------------------------------------------------------------------- process bookkeeping

_live: dict[int, subprocess.Popen[bytes]] = {}
_live_lock = threading.Lock()


def _terminate(process: subprocess.Popen[bytes], timeout: float) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            process.wait(10)
    with _live_lock:
        _live.pop(process.pid, None)


@atexit.register
def _stop_leftovers() -> None:
    with _live_lock:
        leftovers = list(_live.values())
    for process in leftovers:
        _terminate(process, 5)


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port on ``host`` that nothing listened on a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


# ---------------------------------------------------------------------- the harness


class Harness:
    """Homeservers on loopback, all under one temporary root directory.

    ``add_kairan``/``add_synapse`` configure a node (data directory, port, config);
    ``start_all`` starts every configured node in parallel and waits until each answers
    ``/_matrix/client/versions``.  ``stop``/``start`` take one node down and bring it
    back with the same data; ``kill`` sends SIGKILL; ``close`` stops everything and
    removes the root unless ``keep`` is set (or ``KAIRAN_INTEROP_KEEP=1``).
    """

    def __init__(
        self,
        root: Path | None = None,
        *,
        startup_timeout: float = 120.0,
        stop_timeout: float = 15.0,
        keep: bool | None = None,
        log_level: str = "INFO",
        distinct_hosts: bool = False,
    ) -> None:
        self._own_root = root is None
        self.root = Path(tempfile.mkdtemp(prefix="kairan-interop-")) if root is None else root
        self.root.mkdir(parents=True, exist_ok=True)
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.keep = os.environ.get("KAIRAN_INTEROP_KEEP") == "1" if keep is None else keep
        self.log_level = log_level
        self.distinct_hosts = distinct_hosts
        self.certs = make_certs(self.root / "certs")
        self.nodes: list[Node] = []
        self._ssl = ssl.create_default_context(cafile=str(self.certs.ca))
        self._synapse_python: Path | None = None

    # -- configuration

    def _new_dir(self, name: str) -> tuple[str, int, Path]:
        if any(n.name == name for n in self.nodes):
            raise HarnessError(f"a node named {name!r} exists already")
        host = LOOPBACK
        if self.distinct_hosts:
            if len(self.nodes) + 2 > LOOPBACK_HOSTS:
                raise HarnessError(f"at most {LOOPBACK_HOSTS - 1} nodes with distinct hosts")
            host = f"127.0.0.{len(self.nodes) + 2}"
        port = free_port(host)
        directory = self.root / name
        directory.mkdir(parents=True)
        return host, port, directory

    def add_kairan(self, name: str) -> Node:
        """Configure a Kairan node (``kairan init``, then the harness's TLS and federation)."""
        host, port, directory = self._new_dir(name)
        server_name = f"{host}:{port}"
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p
        )
        init = subprocess.run(
            [
                sys.executable,
                "-m",
                "cli.main",
                "init",
                "--server-name",
                server_name,
                "--dir",
                str(directory),
                "--enable-registration",
            ],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if init.returncode != 0:
            raise HarnessError(f"kairan init for {name} failed: {init.stderr.strip()}")
        config_path = directory / "kairan.yaml"
        config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
        config_path.write_text(
            yaml.safe_dump(kairan_overrides(config, self.certs), sort_keys=False),
            encoding="utf-8",
        )
        log = directory / "kairan.log"
        node = Node(
            name=name,
            kind="kairan",
            port=port,
            directory=directory,
            command=[
                sys.executable,
                "-m",
                "cli.main",
                "serve",
                "--dir",
                str(directory),
                "--log-level",
                self.log_level,
            ],
            env=env,
            log_files=[log],
            host=host,
        )
        self.nodes.append(node)
        return node

    def synapse_python(self) -> Path:
        if self._synapse_python is None:
            from interop.synapse_env import ensure_synapse_venv

            self._synapse_python = ensure_synapse_venv()
        return self._synapse_python

    def add_synapse(self, name: str) -> Node:
        """Configure a Synapse node (config generated here, signing key made here)."""
        python = self.synapse_python()
        host, port, directory = self._new_dir(name)
        server_name = f"{host}:{port}"
        (directory / "media_store").mkdir()
        config, log_config = synapse_config(
            server_name, port, directory, self.certs, self.log_level, host=host
        )
        (directory / "homeserver.yaml").write_text(
            yaml.safe_dump(config, sort_keys=False), encoding="utf-8"
        )
        (directory / "log.config").write_text(yaml.safe_dump(log_config), encoding="utf-8")
        key = directory / "signing.key"
        key.write_text(signing_key_line(), encoding="utf-8")
        key.chmod(0o600)
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        node = Node(
            name=name,
            kind="synapse",
            port=port,
            directory=directory,
            command=[
                str(python),
                "-m",
                "synapse.app.homeserver",
                "-c",
                str(directory / "homeserver.yaml"),
            ],
            env=env,
            log_files=[directory / "stdout.log", directory / "homeserver.log"],
            host=host,
        )
        self.nodes.append(node)
        return node

    def add(self, kind: NodeKind, name: str) -> Node:
        return self.add_kairan(name) if kind == "kairan" else self.add_synapse(name)

    # -- processes

    def _spawn(self, node: Node) -> None:
        if node.running:
            raise HarnessError(f"{node.name} is running already")
        node.starts += 1
        out = node.log_files[0].open("ab")
        try:
            out.write(f"\n===== start #{node.starts} at {time.ctime()}\n".encode())
            out.flush()
            process = subprocess.Popen(
                node.command,
                cwd=REPO_ROOT if node.kind == "kairan" else node.directory,
                env=node.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C of the runner reaches it through us only
            )
        finally:
            out.close()
        with _live_lock:
            _live[process.pid] = process
        node.process = process

    def _answers(self, node: Node) -> bool:
        url = f"{node.base_url}/_matrix/client/versions"
        try:
            with urllib.request.urlopen(url, timeout=2, context=self._ssl) as response:
                return int(response.status) == 200
        except (OSError, urllib.error.URLError):
            return False

    def _wait_ready(self, node: Node, deadline: float) -> None:
        while True:
            if node.process is None or node.process.poll() is not None:
                code = None if node.process is None else node.process.returncode
                raise HarnessError(
                    f"{node.name} ({node.kind}) exited with {code} during start-up\n"
                    + node.log_tail()
                )
            if self._answers(node):
                return
            if time.monotonic() > deadline:
                raise HarnessError(
                    f"{node.name} ({node.kind}) not answering /_matrix/client/versions after "
                    f"{self.startup_timeout:.0f}s\n" + node.log_tail()
                )
            time.sleep(0.1)

    def start(self, node: Node) -> None:
        """Start a configured or stopped node and wait until it answers."""
        self._spawn(node)
        self._wait_ready(node, time.monotonic() + self.startup_timeout)

    def start_all(self) -> None:
        """Start every node that is not running, in parallel, and wait for all of them."""
        pending = [n for n in self.nodes if not n.running]
        for node in pending:
            self._spawn(node)
        deadline = time.monotonic() + self.startup_timeout
        for node in pending:
            self._wait_ready(node, deadline)

    def stop(self, node: Node) -> None:
        """SIGTERM, then SIGKILL after ``stop_timeout``; the data directory stays."""
        if node.process is not None:
            _terminate(node.process, self.stop_timeout)
        node.process = None

    def kill(self, node: Node) -> None:
        """SIGKILL at once (a crash); the data directory stays."""
        if node.process is not None:
            with contextlib.suppress(ProcessLookupError):
                node.process.kill()
            node.process.wait(10)
            with _live_lock:
                _live.pop(node.process.pid, None)
        node.process = None

    def close(self) -> None:
        """Stop every node (in parallel) and remove the root unless kept."""
        threads = [threading.Thread(target=self.stop, args=(n,), daemon=True) for n in self.nodes]
        for t in threads:
            t.start()
        for t in threads:
            t.join(self.stop_timeout + 15)
        if self._own_root and not self.keep:
            shutil.rmtree(self.root, ignore_errors=True)

    def logs(self, lines: int = 40) -> str:
        return "".join(n.log_tail(lines) for n in self.nodes)

    def __enter__(self) -> Harness:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def running(kinds: dict[str, NodeKind], **kwargs: Any) -> Iterator[tuple[Harness, list[Node]]]:
    """Start nodes named by ``kinds`` (name -> kind); stop them all on the way out."""
    harness = Harness(**kwargs)
    try:
        nodes = [harness.add(kind, name) for name, kind in kinds.items()]
        harness.start_all()
        yield harness, nodes
    finally:
        harness.close()
