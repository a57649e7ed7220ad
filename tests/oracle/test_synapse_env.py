"""``interop.synapse_env``: where the Synapse venv lives, when it is reused or rebuilt.

No install happens here: the rebuild path is replaced by a stub.  (The real install is
exercised by every oracle test through the session fixture.)
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from interop import synapse_env


def _fake_venv(root: Path, version: str | None) -> None:
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "python").write_text("")
    if version is not None:
        (root / synapse_env.MARKER_NAME).write_text(json.dumps({"matrix-synapse": version}))


def test_default_root_follows_kairan_cache_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("KAIRAN_CACHE_DIR", str(tmp_path))
    assert synapse_env.default_root() == tmp_path / "synapse-venv"
    monkeypatch.delenv("KAIRAN_CACHE_DIR")
    assert synapse_env.default_root() == Path.home() / ".cache" / "kairan" / "synapse-venv"


def test_a_finished_venv_of_the_pinned_version_is_reused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    root = tmp_path / "venv"
    _fake_venv(root, synapse_env.SYNAPSE_VERSION)

    def no_install(_: Path) -> None:
        raise AssertionError("must not reinstall")

    monkeypatch.setattr(synapse_env, "_install", no_install)
    assert synapse_env.ensure_synapse_venv(root) == root / "bin" / "python"


@pytest.mark.parametrize("marker", [None, "1.0.0", "garbage"])
def test_half_finished_or_other_version_is_rebuilt(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, marker: str | None
) -> None:
    root = tmp_path / "venv"
    _fake_venv(root, None if marker == "garbage" else marker)
    if marker == "garbage":
        (root / synapse_env.MARKER_NAME).write_text("{not json")
    calls: list[Path] = []
    monkeypatch.setattr(synapse_env, "_install", calls.append)
    synapse_env.ensure_synapse_venv(root)
    assert calls == [root]


def test_install_failure_is_reported(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def failing(_: Path) -> None:
        raise RuntimeError("pip said no")

    monkeypatch.setattr(synapse_env, "_install", failing)
    with pytest.raises(RuntimeError, match="pip said no"):
        synapse_env.ensure_synapse_venv(tmp_path / "venv")
    assert not (tmp_path / "venv" / synapse_env.MARKER_NAME).exists()
