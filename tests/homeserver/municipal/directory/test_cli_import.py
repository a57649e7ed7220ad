"""``kairan org import FILE.csv --dir NODEDIR [--dry-run]`` as an IT team runs it, on both
databases: a dry run changes nothing, an import replaces the organisations' staff lists,
a file with errors lists them with their line numbers and imports nothing."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from sqlalchemy import text

from homeserver.config import load_config
from homeserver.node.app import build_services, close_services
from tests.homeserver.municipal.directory.helpers import NEMURO, csv_bytes
from tests.test_cli import assert_one_line_error, init, kairan


def node_dir(tmp_path: Path, db_url: str, features: bool = True) -> Path:
    directory = tmp_path / "node"
    config = init(directory)
    text = re.sub(r'database: ".*"', f'database: "{db_url}"', config.read_text())
    if features:
        text += "\nfeatures:\n  directory: {}\n"
    config.write_text(text)
    return directory


def stored(directory: Path) -> list[tuple[str, str, str]]:
    async def read() -> list[tuple[str, str, str]]:
        services = await build_services(load_config(directory), fast_passwords=True)
        try:
            async with services.db.read() as conn:
                rows = await conn.execute(
                    text("SELECT name, department, title FROM directory_staff ORDER BY name")
                )
                return [(str(a), str(b), str(c)) for a, b, c in rows.all()]
        finally:
            await close_services(services)

    return asyncio.run(read())


def test_import_dry_run_changes_and_errors(tmp_path: Path, db_url: str) -> None:
    directory = node_dir(tmp_path, db_url)
    d = ("--dir", directory)
    first = tmp_path / "staff.csv"
    first.write_bytes(csv_bytes(NEMURO, "shift_jis"))  # what Excel on Windows writes

    dry = kairan("org", "import", first, *d, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    lines = dry.stdout.splitlines()
    assert lines[0] == (
        "+ 012238 根室市役所: 山田 太郎 (総務部/総務課, 課長, "
        f"@yamada:{load_config(directory).server_name}) (line 2)"
    )
    assert lines[-1] == "dry run: 5 added, 0 changed, 0 removed (nothing changed)"
    assert stored(directory) == []

    done = kairan("org", "import", first, *d)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "5 added, 0 changed, 0 removed"
    assert len(stored(directory)) == 5

    # The next file: 佐藤 is promoted, 鈴木 left the town office, 伊藤 joined; the other
    # organisations are not in the file and keep their staff.
    second = tmp_path / "staff2.csv"
    second.write_bytes(
        csv_bytes(
            [
                NEMURO[0],
                "012238,根室市役所,,総務部/総務課,佐藤 花子,サトウ ハナコ,係長,1202,",
                "012238,根室市役所,,総務部/総務課,伊藤 誠,いとう まこと,主事,1203,",
            ]
        )
    )
    changed = kairan("org", "import", second, *d)
    assert changed.returncode == 0, changed.stderr
    out = changed.stdout.splitlines()
    assert "~ 012238 根室市役所: 佐藤 花子: title 主任 -> 係長 (line 3)" in out
    assert "+ 012238 根室市役所: 伊藤 誠 (総務部/総務課, 主事) (line 4)" in out
    assert any(line.startswith("- 012238 根室市役所: 鈴木 一郎") for line in out)
    assert out[-1] == "1 added, 1 changed, 1 removed"
    names = [n for n, _, _ in stored(directory)]
    assert "鈴木 一郎" not in names and "伊藤 誠" in names and "高橋 美咲" in names

    # Errors: each on its own line with its line number; nothing imported.
    bad = tmp_path / "bad.csv"
    bad.write_bytes(
        csv_bytes(
            [
                "012238,根室市役所,,総務課,新人 一,,,,",
                "012239,根室市役所,,総務課,新人 二,,,,",
                "012238,根室市役所,,総務課,,,,,",
            ]
        )
    )
    refused = kairan("org", "import", bad, *d)
    assert refused.returncode == 1
    errors = refused.stderr.splitlines()
    assert errors[0].startswith(f"{bad}: line 3: 団体コード/org_code 012239 has a wrong check")
    assert errors[1] == f"{bad}: line 4: 氏名/name is empty"
    assert errors[-1] == "Error: 2 error(s); nothing was imported"
    assert "新人 一" not in [n for n, _, _ in stored(directory)]


def test_import_without_the_feature_or_the_file(tmp_path: Path, db_url: str) -> None:
    directory = node_dir(tmp_path, db_url, features=False)
    staff = tmp_path / "staff.csv"
    staff.write_bytes(csv_bytes(NEMURO))
    assert_one_line_error(
        kairan("org", "import", staff, "--dir", directory), "directory feature is not enabled"
    )
    assert_one_line_error(
        kairan("org", "import", tmp_path / "missing.csv", "--dir", directory), "cannot read"
    )
