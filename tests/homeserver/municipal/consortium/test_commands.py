"""``kairan consortium`` on files: new, add, remove, sign, verify, show (apply: with a
node, test_node.py).  The command line is a contract: these are its exit codes and lines."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result

from cli.main import main


def kairan(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def ok(*args: str | Path) -> str:
    result = kairan(*args)
    assert result.exit_code == 0, result.output
    return result.output


def fails(*args: str | Path) -> str:
    result = kairan(*args)
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    return lines[0]


def keys(tmp_path: Path, *names: str) -> dict[str, Path]:
    found = {}
    for name in names:
        found[name] = tmp_path / f"{name}.key"
        ok("key", "generate", "--out", found[name], "--version", name)
    return found


def test_make_sign_edit_and_verify_a_document(tmp_path: Path) -> None:
    k = keys(tmp_path, "a1", "a2", "a3", "srv")
    doc = tmp_path / "kanto.json"
    out = ok(
        "consortium", "new", "--id", "kanto", "--name", "関東", "--admin-key", k["a1"],
        "--admin-key", k["a2"], "--admin-key", k["a3"], "--out", doc,
    )  # fmt: skip
    assert "2 of 3 admins" in out  # a majority by default
    assert fails("consortium", "verify", doc) == (
        "Error: signed by 0 of the 2 admins of version 1 needed"
    )
    verify_key = ok("key", "show", k["srv"]).strip()
    ok("consortium", "add", doc, "--server", "city-a.example.jp", "--verify-key", verify_key,
       "--org-code", "131016", "--org-name", "千代田区")  # fmt: skip
    assert "1 of 2 signatures: draft" in ok("consortium", "sign", doc, "--admin-key", k["a1"])
    assert fails("consortium", "verify", doc).startswith("Error: signed by 1 of the 2")
    assert "2 of 2 signatures: signed" in ok("consortium", "sign", doc, "--admin-key", k["a3"])
    assert ok("consortium", "verify", doc).startswith("valid: consortium kanto version 1")
    shown = ok("consortium", "show", doc)
    assert "version 1" in shown and "city-a.example.jp  131016  千代田区" in shown
    assert verify_key in shown
    # An edit of a signed version is a draft of the next one, with no signatures.
    ok("consortium", "add", doc, "--server", "city-b.example.jp", "--verify-key", verify_key)
    draft = json.loads(doc.read_text(encoding="utf-8"))
    assert draft["version"] == 2 and "signatures" not in draft
    assert draft["previous"]["version"] == 1 and draft["previous"]["threshold"] == 2
    ok("consortium", "remove", doc, "--server", "city-a.example.jp")
    assert json.loads(doc.read_text(encoding="utf-8"))["version"] == 2  # still the draft
    assert fails("consortium", "sign", doc, "--admin-key", k["srv"]).endswith(
        "is not an admin of version 1"
    )
    ok("consortium", "sign", doc, "--admin-key", k["a1"], "--admin-key", k["a2"])
    assert "version 2" in ok("consortium", "verify", doc)
    assert set(json.loads(doc.read_text(encoding="utf-8"))["members"]) == {"city-b.example.jp"}


def test_tampered_and_bad_input_fail_with_one_line(tmp_path: Path) -> None:
    k = keys(tmp_path, "a1")
    doc = tmp_path / "d.json"
    ok("consortium", "new", "--id", "d", "--name", "D", "--admin-key", k["a1"], "--out", doc)
    ok("consortium", "sign", doc, "--admin-key", k["a1"])
    ok("consortium", "verify", doc)
    obj = json.loads(doc.read_text(encoding="utf-8"))
    obj["name"] = "E"
    doc.write_text(json.dumps(obj), encoding="utf-8")
    assert fails("consortium", "verify", doc) == (
        "Error: bad signature by admin ed25519:a1 of version 1"
    )
    assert "exists" in fails(
        "consortium", "new", "--id", "d", "--name", "D", "--admin-key", k["a1"], "--out", doc
    )
    assert "does not verify" in fails(
        "consortium", "add", doc, "--server", "x.example.jp", "--verify-key", "ed25519:k AAAA"
    )
    assert "JIS X 0402" in fails(
        "consortium", "add", doc, "--server", "x.example.jp", "--org-code", "131017",
        "--verify-key", ok("key", "show", k["a1"]).strip(),
    )  # fmt: skip
    assert "is not a member" in fails("consortium", "remove", doc, "--server", "y.example.jp")
    (tmp_path / "junk.json").write_text("{nope", encoding="utf-8")
    assert "is not JSON" in fails("consortium", "verify", tmp_path / "junk.json")
    assert "cannot read" in fails("consortium", "verify", tmp_path / "missing.json")
    assert "threshold 2 is more than the 1 admins" in fails(
        "consortium", "new", "--id", "e", "--name", "E", "--admin-key", k["a1"],
        "--threshold", "2", "--out", tmp_path / "e.json",
    )  # fmt: skip
    assert "give DOC or --dir" in fails("consortium", "show")
