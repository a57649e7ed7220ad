"""``kairan user add NAME --partner --expires DATE``, partners in ``kairan user list``, and
``kairan partner list / extend / end``: the real command in subprocesses, on both
databases."""

from __future__ import annotations

import json
from pathlib import Path

from tests.homeserver.municipal.partners.helpers import day
from tests.test_cli import assert_one_line_error, kairan, node_with_room


def with_partners(directory: Path) -> None:
    config = directory / "kairan.yaml"
    config.write_text(config.read_text() + "\nfeatures:\n  partners: {}\n")


def test_user_add_partner_and_the_partner_commands(tmp_path: Path, db_url: str) -> None:
    directory = tmp_path / "node"
    server_name, _ = node_with_room(directory, db_url)
    d = ("--dir", directory)
    # Without the feature enabled: a one-line error, and no account made.
    refused = kairan(
        "user", "add", "dmat1", *d, "--password", "pw", "--partner", "--expires", day(30)
    )
    assert_one_line_error(refused, "partners feature is not enabled")
    with_partners(directory)
    listed = json.loads(kairan("user", "list", *d, "--json").stdout)
    assert f"@dmat1:{server_name}" not in {u["user_id"] for u in listed}

    added = kairan(
        "user", "add", "dmat1", *d, "--password", "pw", "--partner", "--expires", "2099-03-31"
    )
    assert added.returncode == 0, added.stderr
    pat = f"@dmat1:{server_name}"
    assert added.stdout.strip() == pat  # the user ID alone on stdout, as ever
    assert "2099-03-31" in added.stderr
    plain = kairan("user", "add", "staff1", *d, "--password", "pw")
    assert plain.returncode == 0, plain.stderr
    # Usage errors: --partner without a date, a date without --partner, a bad or past date.
    for args in (
        ("--partner",),
        ("--expires", "2099-03-31"),
        ("--partner", "--expires", "31/03/2099"),
        ("--partner", "--expires", day(-1)),
    ):
        bad = kairan("user", "add", "dmat2", *d, "--password", "pw", *args)
        assert bad.returncode == 2, (args, bad.stderr)
        assert "Traceback" not in bad.stderr
    users = {u["user_id"]: u for u in json.loads(kairan("user", "list", *d, "--json").stdout)}
    assert f"@dmat2:{server_name}" not in users
    assert users[pat]["partner"] == {"expires": "2099-03-31", "expired": False}
    assert "partner" not in users[f"@staff1:{server_name}"] and "labels" not in users[pat]
    lines = kairan("user", "list", *d).stdout.splitlines()
    assert f"{pat}\tdmat1\tpartner until 2099-03-31" in lines
    assert f"@staff1:{server_name}\tstaff1\t" in lines

    assert kairan("partner", "list", *d).stdout.splitlines() == [f"{pat}\t2099-03-31"]
    extended = kairan("partner", "extend", pat, "--expires", "2100-01-31", *d)
    assert extended.returncode == 0, extended.stderr
    assert kairan("partner", "list", *d).stdout.splitlines() == [f"{pat}\t2100-01-31"]
    assert_one_line_error(
        kairan("partner", "extend", f"@nobody:{server_name}", "--expires", "2100-01-31", *d),
        "M_NOT_FOUND",
    )
    ended = kairan("partner", "end", pat, *d)
    assert ended.returncode == 0, ended.stderr
    assert kairan("partner", "list", *d).stdout.strip() == ""
    assert_one_line_error(kairan("partner", "end", pat, *d), "not a partner account")
