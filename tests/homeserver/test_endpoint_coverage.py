"""``kairan endpoints`` (spec coverage) and the honesty of ``/versions``.

The coverage command runs on a small fake spec here (no spec checkout needed) and on the
real one in the conformance run; the ``/versions`` test reads the committed table
``spec/client-server-versions.json`` and the node's router, so ``make test`` needs no spec.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.endpoints import endpoints, probe, render, routed, same_shape
from cli.spec_ops import (
    OPTIONAL,
    VERSIONS_FILE,
    latest_release,
    read_operations,
    versions_table,
)
from homeserver.client_api.discovery import SPEC_VERSIONS
from homeserver.node.app import make_app
from tests.homeserver.conftest import Node
from tests.homeserver.openapi import ClientServerSpec, ValidatingClient


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")


def fake_spec(root: Path) -> Path:
    _write(root / "data/api/client-server/a.yaml", """\
        openapi: 3.1.0
        paths:
          /account/whoami:
            get: {summary: who}
          /rooms/{roomId}/not_a_thing:
            post: {summary: none, x-addedInMatrixVersion: "1.2"}
          /account/3pid/email/requestToken:
            post: {summary: email}
        servers:
          - url: "{protocol}://{hostname}{basePath}"
            variables:
              basePath: {default: /_matrix/client/v3}
        """)  # fmt: skip
    _write(root / "data/api/client-server/v1.yaml", """\
        paths:
          /login/get_token:
            post: {summary: optional, x-addedInMatrixVersion: "1.2"}
        servers:
          - variables:
              basePath: {default: /_matrix/client/v1}
        """)  # fmt: skip
    _write(root / "data/api/server-server/k.yaml", """\
        paths:
          /server:
            get: {summary: keys}
          "/server ":
            get: {summary: the same operation, described twice}
        servers:
          - variables:
              basePath: {default: /_matrix/key/v2}
        """)  # fmt: skip
    _write(root / "data/api/server-server/f.yaml", """\
        paths:
          /3pid/onbind:
            put: {summary: onbind}
        servers:
          - variables:
              basePath: {default: /_matrix/federation/v1}
        """)  # fmt: skip
    _write(root / "SNAPSHOT.txt", "snapshot: fake, latest release v1.2\n")
    return root


def test_reading_a_spec(tmp_path: Path) -> None:
    ops = {op.key: op for op in read_operations(fake_spec(tmp_path))}
    assert set(ops) == {
        "GET /_matrix/client/v3/account/whoami",
        "POST /_matrix/client/v3/rooms/{roomId}/not_a_thing",
        "POST /_matrix/client/v3/account/3pid/email/requestToken",
        "POST /_matrix/client/v1/login/get_token",
        "GET /_matrix/key/v2/server",
        "PUT /_matrix/federation/v1/3pid/onbind",
    }
    assert ops["GET /_matrix/key/v2/server"].api == "keys"
    assert ops["POST /_matrix/client/v3/rooms/{roomId}/not_a_thing"].added_in == "1.2"
    assert ops["POST /_matrix/client/v3/account/3pid/email/requestToken"].needs == "email or SMS"
    assert ops["PUT /_matrix/federation/v1/3pid/onbind"].needs == "identity server"
    table = versions_table(tmp_path)
    assert table == {
        "v1.1": [
            "GET /_matrix/client/v3/account/whoami",
            "POST /_matrix/client/v3/account/3pid/email/requestToken",
        ],
        "v1.2": ["POST /_matrix/client/v3/rooms/{roomId}/not_a_thing"],
    }  # the optional /v1/login/get_token counts for no version


def test_endpoints_command_on_a_fake_spec(tmp_path: Path) -> None:
    result = CliRunner().invoke(endpoints, ["--spec", str(fake_spec(tmp_path))])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "== client-server: 2 of 4 answered, 1 off, 1 missing" in lines
    assert any(
        line.split() == ["answered", "GET", "/_matrix/client/v3/account/whoami"] for line in lines
    )
    assert any(
        line.split()[:3] == ["missing", "POST", "/_matrix/client/v3/rooms/{roomId}/not_a_thing"]
        for line in lines
    )
    # Off by default (routed; M_UNRECOGNIZED from its handler), and optional.
    get_token = [line for line in lines if "/_matrix/client/v1/login/get_token" in line]
    assert get_token[0].split()[0] == "off" and "optional" in get_token[0]
    # Refused as Synapse refuses it: answered, and flagged.
    email = [line for line in lines if "email/requestToken" in line]
    assert email[0].split()[0] == "answered" and "(needs email or SMS)" in email[0]
    # The federation catch-all answers M_UNRECOGNIZED: missing, not "off".
    assert "== server-server: 0 of 1 answered, 0 off, 1 missing" in lines
    assert "== keys: 1 of 1 answered, 0 off, 0 missing" in lines
    assert "  complete: v1.1" in lines  # v1.2 lacks not_a_thing
    assert "  v1.2: 1 operations (of it and earlier) not answered" in lines
    only = CliRunner().invoke(endpoints, ["--spec", str(tmp_path), "--missing"])
    assert only.exit_code == 0 and "account/whoami" not in only.output
    assert "not_a_thing" in only.output
    empty = CliRunner().invoke(endpoints, ["--spec", str(tmp_path / "data")])
    assert empty.exit_code != 0 and "no OpenAPI operations" in empty.output


def test_route_shapes() -> None:
    assert same_shape("/_matrix/client/v3/rooms/{room_id}/state/{event_type}/{state_key}",
                      "/_matrix/client/v3/rooms/{roomId}/state/{eventType}/{stateKey}")  # fmt: skip
    assert same_shape("/_matrix/client/v3/thirdparty/{kind}", "/_matrix/client/v3/thirdparty/user")
    assert not same_shape("/_matrix/federation/v1/{tail}", "/_matrix/federation/v1/3pid/onbind")
    assert not same_shape("/_matrix/client/v3/rooms/{room_id}/state/m.room.name",
                          "/_matrix/client/v3/rooms/{roomId}/state/{eventType}")  # fmt: skip


@pytest.mark.conformance
async def test_endpoints_command_on_the_spec(spec: ClientServerSpec, node: Node) -> None:
    states = await probe(read_operations(spec.root))
    lines = render(states, missing_only=False, latest=latest_release(spec.root))
    headers = [line for line in lines if line.startswith("== ")]
    assert [h.split(":")[0] for h in headers] == [
        "== client-server", "== media", "== server-server", "== keys", "== versions (client-server and media)",
    ]  # fmt: skip
    assert any(line.split()[:3] == ["answered", "POST", "/_matrix/client/v3/refresh"]
               for line in lines)  # fmt: skip
    # The committed table is what the script makes of this spec.
    assert json.loads(VERSIONS_FILE.read_text()) == versions_table(spec.root)
    async with ValidatingClient(node.base_url, spec) as client:  # /versions as the spec says
        await client.ok("GET", "/_matrix/client/versions")
        assert client.mismatches == []


async def test_versions_claims_only_what_is_routed(node: Node) -> None:
    """/versions claims a version only when every operation of it and of the versions
    before it (but the optional ones) has a route; this becomes true as endpoints land."""
    table: dict[str, list[str]] = json.loads(VERSIONS_FILE.read_text())
    app = make_app(node.services)
    claimed_ops: list[str] = []
    honest: list[str] = []
    for version, ops in table.items():
        claimed_ops += [op for op in ops if op not in OPTIONAL]
        missing = [op for op in claimed_ops if not await routed(app, *op.split(" ", 1))]
        if version in SPEC_VERSIONS:
            assert missing == [], f"/versions claims {version}; not routed: {missing}"
        if not missing:
            honest.append(version)
    assert honest == SPEC_VERSIONS  # and nothing it could claim is left out
    async with node.client() as client:
        served = await client.ok("GET", "/_matrix/client/versions")
    assert served["versions"] == SPEC_VERSIONS
