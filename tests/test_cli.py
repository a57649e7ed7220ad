"""The real ``kairan`` command in subprocesses: init, serve and shutdown, config errors,
user and room administration against a node directory."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from cli.main import main, register_groups
from homeserver.client_api.discovery import SPEC_VERSIONS
from homeserver.config import load_config
from homeserver.node.app import build_services, close_services
from tests.homeserver.conftest import db_url

__all__ = ["db_url"]  # the fixture: administration runs on SQLite and PostgreSQL

ROOT = Path(__file__).resolve().parent.parent
ENTRY = Path(sys.executable).parent / "kairan"
KAIRAN = [str(ENTRY)] if ENTRY.exists() else [sys.executable, "-m", "cli.main"]
#: A log record as ``kairan serve`` writes them (``2026-01-01 10:00:00,000 INFO name: ...``).
LOG_RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ (DEBUG|INFO) ")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def kairan(*args: str | Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*KAIRAN, *map(str, args)],
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def init(directory: Path, port: int | None = None) -> Path:
    result = kairan("init", "--server-name", f"127.0.0.1:{port or free_port()}", "--dir", directory)
    assert result.returncode == 0, result.stderr
    return directory / "kairan.yaml"


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    """Non-zero exit, no traceback, and one line (besides INFO log records) saying why."""
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if not LOG_RECORD.match(line)]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def wait_until_up(process: subprocess.Popen[str], url: str) -> bytes:
    """Poll ``url`` until it answers 200 (the node failing to start fails the test)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            stderr = process.stderr.read() if process.stderr else ""
            pytest.fail(f"kairan serve exited with {process.returncode}: {stderr}")
        try:
            status, body = get(url)
            if status == 200:
                return body
        except OSError:
            pass
        time.sleep(0.1)
    process.kill()
    pytest.fail(f"{url} never answered")


def call(method: str, url: str, body: Any = None, token: str | None = None) -> Any:
    request = urllib.request.Request(
        url, method=method, data=json.dumps(body).encode() if body is not None else None
    )
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def long_poll(url: str, token: str) -> None:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with contextlib.suppress(OSError), urllib.request.urlopen(request, timeout=150):
        pass


@pytest.fixture
def served() -> Iterator[list[subprocess.Popen[str]]]:
    processes: list[subprocess.Popen[str]] = []
    yield processes
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait()


def start(
    processes: list[subprocess.Popen[str]], directory: Path, *options: str
) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [*KAIRAN, "serve", "--dir", str(directory), *options],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    processes.append(process)
    return process


# ---------------------------------------------------------------------- init and serve


def test_init_serve_sigterm(tmp_path: Path, served: list[subprocess.Popen[str]]) -> None:
    port = free_port()
    metrics_port = free_port()
    config = init(tmp_path / "node", port)
    assert (tmp_path / "node" / "signing.key").exists()
    text = config.read_text()
    config.write_text(
        text.replace(
            'metrics:\n  enabled: false\n  host: "127.0.0.1"\n  port: 9108',
            f'metrics:\n  enabled: true\n  host: "127.0.0.1"\n  port: {metrics_port}',
        )
    )
    assert f"port: {metrics_port}" in config.read_text()
    added = kairan("user", "add", "sato", "--dir", tmp_path / "node", "--password", "pw")
    assert added.returncode == 0, added.stderr
    process = start(served, tmp_path / "node")
    versions = json.loads(
        wait_until_up(process, f"http://127.0.0.1:{port}/_matrix/client/versions")
    )
    assert versions["versions"] == SPEC_VERSIONS
    status, scraped = get(f"http://127.0.0.1:{metrics_port}/metrics")
    assert status == 200
    assert b'kairan_http_requests_total{method="GET",route="/_matrix/client/versions"' in scraped

    # A /sync long-poll is in flight when SIGTERM comes: the node must not wait for it.
    base = f"http://127.0.0.1:{port}/_matrix/client/v3"
    login = {"type": "m.login.password", "user": "sato", "password": "pw"}
    token = call("POST", f"{base}/login", login)["access_token"]
    since = call("GET", f"{base}/sync", token=token)["next_batch"]
    poll = threading.Thread(
        target=long_poll, args=(f"{base}/sync?since={since}&timeout=120000", token), daemon=True
    )
    poll.start()
    deadline = time.monotonic() + 30
    while b"kairan_sync_waiters 1.0" not in get(f"http://127.0.0.1:{metrics_port}/metrics")[1]:
        if time.monotonic() > deadline:
            pytest.fail("the long-poll never showed in kairan_sync_waiters")
        time.sleep(0.05)

    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        pytest.fail("kairan serve did not stop within 15 s of SIGTERM")
    stderr = process.stderr.read() if process.stderr else ""
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert "shutting down" in stderr
    assert "access_log" not in stderr  # requests are logged by development nodes only
    with pytest.raises(OSError):
        get(f"http://127.0.0.1:{port}/_matrix/client/versions")


def test_dev_node_logs_each_request(tmp_path: Path, served: list[subprocess.Popen[str]]) -> None:
    port = free_port()
    init(tmp_path / "node", port)  # --dev serves a node that is there as it is
    process = start(served, tmp_path / "node", "--dev")
    url = f"http://127.0.0.1:{port}/_matrix/client"
    wait_until_up(process, f"{url}/versions?access_token=s3cret")
    assert get(f"{url}/v3/nowhere")[0] == 404
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=15)
    stderr = process.stderr.read() if process.stderr else ""
    assert process.returncode == 0, stderr
    line = r" INFO homeserver\.node\.access_log: GET {} {} \d+\.\dms$"
    versions = re.escape("/_matrix/client/versions?access_token=<redacted>")
    assert re.search(line.format(versions, 200), stderr, re.M), stderr
    assert re.search(line.format("/_matrix/client/v3/nowhere", 404), stderr, re.M), stderr
    assert "s3cret" not in stderr


def test_init_refuses_to_overwrite(tmp_path: Path) -> None:
    config = init(tmp_path / "node")
    before = config.read_text()
    key = (tmp_path / "node" / "signing.key").read_text()
    again = kairan("init", "--server-name", "other.example", "--dir", tmp_path / "node")
    assert_one_line_error(again, "already exists", "refusing to overwrite")
    assert config.read_text() == before
    assert (tmp_path / "node" / "signing.key").read_text() == key
    assert_one_line_error(kairan("init", "--server-name", "bad name!", "--dir", tmp_path / "other"))


# ---------------------------------------------------------------------- configuration errors


def test_bad_yaml(tmp_path: Path) -> None:
    config = init(tmp_path / "node")
    config.write_text(config.read_text() + "\nlisten: [unclosed\n")
    assert_one_line_error(kairan("serve", "--dir", tmp_path / "node"), "not valid YAML")


def test_unknown_key(tmp_path: Path) -> None:
    config = init(tmp_path / "node")
    config.write_text(config.read_text() + "\nfederation_whitelist: []\n")
    assert_one_line_error(
        kairan("serve", "--dir", tmp_path / "node"),
        "unknown configuration keys: federation_whitelist",
    )


def test_wrong_type(tmp_path: Path) -> None:
    config = init(tmp_path / "node")
    config.write_text(config.read_text().replace("burst: 50", "burst: lots"))
    assert_one_line_error(kairan("serve", "--dir", tmp_path / "node"), "rate_limit.burst")


def test_no_config(tmp_path: Path) -> None:
    assert_one_line_error(kairan("serve", "--dir", tmp_path / "empty"), "kairan init")


def test_missing_signing_key(tmp_path: Path) -> None:
    init(tmp_path / "node")
    (tmp_path / "node" / "signing.key").unlink()
    assert_one_line_error(kairan("serve", "--dir", tmp_path / "node"), "signing key", "missing")


def test_unreachable_postgresql(tmp_path: Path) -> None:
    config = init(tmp_path / "node")
    text = re.sub(
        r'database: ".*"',
        f'database: "postgresql+asyncpg://kairan:secret@127.0.0.1:{free_port()}/kairan"',
        config.read_text(),
    )
    config.write_text(text)
    result = kairan("serve", "--dir", tmp_path / "node")
    assert_one_line_error(result, "cannot use the database", "127.0.0.1")
    assert "secret" not in result.stderr


def test_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = int(taken.getsockname()[1])
        init(tmp_path / "node", port)
        assert_one_line_error(
            kairan("serve", "--dir", tmp_path / "node"), f"cannot listen on 127.0.0.1:{port}"
        )


def test_metrics_port_in_use(tmp_path: Path) -> None:
    config = init(tmp_path / "node")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = int(taken.getsockname()[1])
        config.write_text(
            config.read_text()
            .replace("enabled: false", "enabled: true")
            .replace("port: 9108", f"port: {port}")
        )
        assert_one_line_error(
            kairan("serve", "--dir", tmp_path / "node"),
            f"cannot listen for metrics on 127.0.0.1:{port}",
        )


def test_log_level_is_one_of_the_choices(tmp_path: Path) -> None:
    bogus = kairan("serve", "--dir", tmp_path, "--log-level", "bogus")
    # A usage error: status 2, no traceback, one line saying why (after click's usage hint).
    assert bogus.returncode == 2, bogus.stderr
    assert "Traceback" not in bogus.stderr + bogus.stdout
    errors = [line for line in bogus.stderr.splitlines() if line.startswith("Error")]
    assert len(errors) == 1, bogus.stderr
    assert "'--log-level'" in errors[0] and "'bogus'" in errors[0], errors
    assert not (tmp_path / "kairan.yaml").exists()  # refused before doing anything
    shown = kairan("serve", "--help")
    assert re.search(r"--log-level \[debug\|info\|warning\|error\|critical\]", shown.stdout, re.I)
    # Any case is accepted: the node then fails on the (missing) configuration, not the level.
    lower = kairan("serve", "--dir", tmp_path, "--log-level", "warning")
    assert_one_line_error(lower, "no configuration", "kairan init")


# ---------------------------------------------------------------------- command groups


@click.group("feature")
def feature_group() -> None:
    """What a node feature's package would contribute."""


@feature_group.command("hello")
def feature_hello() -> None:
    click.echo("hello from a feature")


def test_feature_groups_join_the_root_command() -> None:
    built_in = {"init", "serve", "user", "room", "token", "key", "bench", "interop", "endpoints"}
    # The rest are the catalogued features' groups (kairan consortium, kairan group...).
    assert set(main.commands) == built_in | {"consortium", "group", "partner", "org"}
    root = click.Group("kairan")
    register_groups(root, ["tests.test_cli:feature_group"])
    result = CliRunner().invoke(root, ["feature", "hello"])
    assert (result.exit_code, result.output) == (0, "hello from a feature\n")
    with pytest.raises(ValueError, match="'feature' exists already"):
        register_groups(root, ["tests.test_cli:feature_group"])
    with pytest.raises(TypeError, match="not a click command"):
        register_groups(root, ["tests.test_cli:free_port"])


# ---------------------------------------------------------------------- administration


def node_with_room(directory: Path, db_url: str) -> tuple[str, str]:
    """A node directory on ``db_url`` whose user @owner has a room; (server_name, room_id)."""
    config = init(directory)
    config.write_text(re.sub(r'database: ".*"', f'database: "{db_url}"', config.read_text()))

    async def make() -> tuple[str, str]:
        svc = await build_services(load_config(directory), fast_passwords=True)
        try:
            owner = await svc.admin.add_user("owner", "owner pw")
            room_id, _ = await svc.handler.create_room(owner, {"name": "防災"})
            return svc.config.server_name, room_id
        finally:
            await close_services(svc)

    return asyncio.run(make())


async def check_password(directory: Path, user_id: str, password: str) -> bool:
    svc = await build_services(load_config(directory), fast_passwords=True)
    try:
        return await svc.accounts.check_password(user_id, password)
    finally:
        await close_services(svc)


def test_user_commands(tmp_path: Path, db_url: str) -> None:
    directory = tmp_path / "node"
    server_name, room_id = node_with_room(directory, db_url)
    d = ("--dir", directory)

    added = kairan("user", "add", "suzuki", *d, "--password", "first pw", "--displayname", "鈴木")
    assert added.returncode == 0, added.stderr
    assert added.stdout.strip() == f"@suzuki:{server_name}"
    admin = kairan("user", "add", "chief", *d, stdin="chief pw\nchief pw\n")  # prompted
    assert admin.returncode == 0, admin.stderr
    made_admin = kairan("user", "add", "boss", *d, "--password", "pw", "--admin")
    assert made_admin.returncode == 0, made_admin.stderr
    assert_one_line_error(kairan("user", "add", "suzuki", *d, "--password", "x"), "M_USER_IN_USE")
    assert_one_line_error(kairan("user", "add", "Bad Name", *d, "--password", "x"))

    listed = kairan("user", "list", *d, "--json")
    assert listed.returncode == 0, listed.stderr
    users = {u["user_id"]: u for u in json.loads(listed.stdout)}
    assert set(users) == {f"@{n}:{server_name}" for n in ("owner", "suzuki", "chief", "boss")}
    assert users[f"@suzuki:{server_name}"]["displayname"] == "鈴木"
    assert users[f"@boss:{server_name}"]["admin"] is True
    plain = kairan("user", "list", *d).stdout.splitlines()
    assert f"@boss:{server_name}\tboss\tadmin" in plain

    suzuki = f"@suzuki:{server_name}"
    reset = kairan("user", "reset-password", suzuki, *d, "--password", "second pw")
    assert reset.returncode == 0, reset.stderr
    assert asyncio.run(check_password(directory, suzuki, "second pw"))
    assert not asyncio.run(check_password(directory, suzuki, "first pw"))
    assert_one_line_error(
        kairan("user", "reset-password", f"@ghost:{server_name}", *d, "--password", "x"),
        "M_NOT_FOUND",
    )

    owner = f"@owner:{server_name}"
    gone = kairan("user", "deactivate", owner, *d)
    assert gone.returncode == 0, gone.stderr
    users = {u["user_id"]: u for u in json.loads(kairan("user", "list", *d, "--json").stdout)}
    assert users[owner]["deactivated"] is True
    assert not asyncio.run(check_password(directory, owner, "owner pw"))
    shown = json.loads(kairan("room", "show", room_id, *d).stdout)
    assert shown["members"][owner] == "leave"  # deactivation left the room
    assert_one_line_error(
        kairan("user", "deactivate", "@x:elsewhere.example", *d), "M_INVALID_PARAM"
    )


def test_user_commands_apply_the_password_rules(tmp_path: Path, db_url: str) -> None:
    directory = tmp_path / "node"
    server_name, _ = node_with_room(directory, db_url)
    config = directory / "kairan.yaml"
    text = config.read_text()
    text = text.replace(
        "  enabled: false\n  minimum_length: 0", "  enabled: true\n  minimum_length: 8"
    )
    config.write_text(text.replace("require_digit: false", "require_digit: true"))
    d = ("--dir", directory)

    assert_one_line_error(
        kairan("user", "add", "tanaka", *d, "--password", "short1"),
        "M_WEAK_PASSWORD",
        "at least 8 characters",
    )
    assert_one_line_error(
        kairan("user", "add", "tanaka", *d, "--password", "no digits here"), "digit"
    )
    assert_one_line_error(kairan("user", "add", "tanaka", *d, "--password", "1" * 513), "512")
    added = kairan("user", "add", "tanaka", *d, "--password", "good password 1")
    assert added.returncode == 0, added.stderr
    tanaka = f"@tanaka:{server_name}"
    assert_one_line_error(
        kairan("user", "reset-password", tanaka, *d, "--password", "weak"), "M_WEAK_PASSWORD"
    )
    assert asyncio.run(check_password(directory, tanaka, "good password 1"))
    reset = kairan("user", "reset-password", tanaka, *d, "--password", "better password 2")
    assert reset.returncode == 0, reset.stderr
    assert asyncio.run(check_password(directory, tanaka, "better password 2"))


def test_room_commands(tmp_path: Path, db_url: str) -> None:
    directory = tmp_path / "node"
    server_name, room_id = node_with_room(directory, db_url)
    d = ("--dir", directory)

    listed = kairan("room", "list", *d)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines() == [f"{room_id}\t1\t防災"]
    rooms: list[dict[str, Any]] = json.loads(kairan("room", "list", *d, "--json").stdout)
    assert [(r["room_id"], r["creator"], r["joined_members"]) for r in rooms] == [
        (room_id, f"@owner:{server_name}", 1)
    ]

    shown = kairan("room", "show", room_id, *d)
    assert shown.returncode == 0, shown.stderr
    details = json.loads(shown.stdout)
    assert details["members"] == {f"@owner:{server_name}": "join"}
    types = {e["type"] for e in details["state"]}
    assert {"m.room.create", "m.room.member", "m.room.power_levels", "m.room.name"} <= types
    assert_one_line_error(kairan("room", "show", "!nowhere", *d), "M_NOT_FOUND")
    assert_one_line_error(kairan("room", "list", "--dir", tmp_path / "none"), "kairan init")


def test_token_commands(tmp_path: Path) -> None:
    directory = tmp_path / "node"
    init(directory)
    d = ("--dir", directory)
    made = kairan("token", "new", *d, "--uses", "2", "--days", "7")
    assert made.returncode == 0, made.stderr
    random_token = made.stdout.strip()
    assert len(random_token) == 16
    named = kairan("token", "new", *d, "--token", "city-hall")
    assert (named.returncode, named.stdout.strip()) == (0, "city-hall")
    assert_one_line_error(kairan("token", "new", *d, "--token", "city-hall"), "already exists")
    assert_one_line_error(kairan("token", "new", *d, "--token", "no spaces"), "M_INVALID_PARAM")

    listed = {t["token"]: t for t in json.loads(kairan("token", "list", *d).stdout)}
    assert set(listed) == {random_token, "city-hall"}
    assert listed[random_token]["uses_allowed"] == 2
    week = listed[random_token]["expiry_time"] - time.time() * 1000
    assert 6.9 * 86_400_000 < week <= 7 * 86_400_000
    assert listed["city-hall"]["uses_allowed"] is None
    assert listed["city-hall"]["expiry_time"] is None

    deleted = kairan("token", "delete", "city-hall", *d)
    assert deleted.returncode == 0, deleted.stderr
    assert [t["token"] for t in json.loads(kairan("token", "list", *d).stdout)] == [random_token]
    assert_one_line_error(kairan("token", "delete", "city-hall", *d), "M_NOT_FOUND")


def test_room_reports_command(tmp_path: Path, db_url: str) -> None:
    directory = tmp_path / "node"
    server_name, room_id = node_with_room(directory, db_url)
    owner = f"@owner:{server_name}"

    async def file_reports() -> None:
        svc = await build_services(load_config(directory), fast_passwords=True)
        try:
            await svc.reports.report_room(owner, room_id, {"reason": "荒らし\nです"})
            await svc.reports.report_user(owner, owner, {"reason": "me"})
        finally:
            await close_services(svc)

    asyncio.run(file_reports())
    d = ("--dir", directory)
    listed = kairan("room", "reports", "--kind", "room", *d)
    assert listed.returncode == 0, listed.stderr
    [line] = listed.stdout.splitlines()
    assert line.split("\t")[1:] == [owner, room_id, "荒らし です"]
    users = json.loads(kairan("room", "reports", "--kind", "user", "--json", *d).stdout)
    assert [(u["target_user_id"], u["reason"]) for u in users] == [(owner, "me")]
    assert kairan("room", "reports", *d).stdout == ""  # no event reports
    bad = kairan("room", "reports", "--kind", "other", *d)
    assert bad.returncode != 0


async def _moderation(directory: Path, user_id: str) -> tuple[bool, bool]:
    svc = await build_services(load_config(directory), fast_passwords=True)
    try:
        user = await svc.accounts.get_user(user_id)
        assert user is not None
        return user.locked, user.suspended
    finally:
        await close_services(svc)


def test_user_lock_and_suspend(tmp_path: Path, db_url: str) -> None:
    directory = tmp_path / "node"
    server_name, _ = node_with_room(directory, db_url)
    d = ("--dir", directory)
    suzuki = f"@suzuki:{server_name}"
    assert kairan("user", "add", "suzuki", *d, "--password", "pw pw").returncode == 0
    for args, expected in (
        (("lock",), (True, False)),
        (("suspend",), (True, True)),
        (("unlock",), (False, True)),
        (("unsuspend",), (False, False)),
    ):
        result = kairan("user", *args, suzuki, *d)
        assert result.returncode == 0, result.stderr
        assert asyncio.run(_moderation(directory, suzuki)) == expected
        if args == ("suspend",):
            assert f"{suzuki}\tsuzuki\tlocked,suspended" in kairan("user", "list", *d).stdout
    assert_one_line_error(kairan("user", "lock", "@x:elsewhere.example", *d), "M_INVALID_PARAM")
    assert_one_line_error(kairan("user", "suspend", f"@ghost:{server_name}", *d), "M_NOT_FOUND")
