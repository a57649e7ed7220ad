"""The operations of the Matrix spec's OpenAPI files (a matrix-spec checkout), read with
PyYAML: every path and method of the Client-Server API (with the media repository), the
Server-Server API and the key API, the version each came in (``x-addedInMatrixVersion``;
none: it predates v1.1), and what it needs that Kairan deliberately lacks (an identity
server, email or SMS).

Also a small program: ``python -m cli.spec_ops SPEC_ROOT`` writes
``spec/client-server-versions.json``, the Client-Server operations each spec version added,
which the test of ``/versions`` reads (so that ``make test`` needs no spec checkout).
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import yaml

METHODS = ("get", "put", "post", "delete", "patch", "head")
#: The file holding the Client-Server operations each version added (see the module doc).
VERSIONS_FILE = Path(__file__).resolve().parent.parent / "spec" / "client-server-versions.json"

#: Dummy values for the path parameters, so that a probe's path parses as the real thing.
DUMMY_PARAMS = {
    "roomId": "!kairanprobe:example.org",
    "roomIdOrAlias": "!kairanprobe:example.org",
    "roomAlias": "#kairanprobe:example.org",
    "userId": "@kairanprobe:example.org",
    "eventId": "$kairanprobe",
    "eventType": "m.room.message",
    "stateKey": "",
    "txnId": "kairanprobe1",
    "serverName": "example.org",
    "mediaId": "kairanprobe",
    "fileName": "probe.png",
    "deviceId": "KAIRANPROBE",
    "filterId": "1",
    "kind": "global",
    "ruleId": "kairanprobe",
    "receiptType": "m.read",
    "relType": "m.thread",
    "version": "1",
    "type": "m.kairan.probe",
    "tag": "u.probe",
    "keyName": "displayname",
}


@dataclass(frozen=True, order=True)
class Operation:
    api: str
    #: The full path template, ``/_matrix/client/v3/rooms/{roomId}/send/...``.
    path: str
    method: str
    #: ``"1.7"``...; None: before v1.1 (the spec annotates what came later).
    added_in: str | None
    source: str
    #: "identity server", "email or SMS", or None.
    needs: str | None = None

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"


def _api(directory: str, name: str, path: str) -> str:
    if directory == "server-server":
        return "keys" if path.startswith("/_matrix/key/") else "server-server"
    if path.startswith("/_matrix/media/") or "/media/" in path or name.endswith("content-repo"):
        return "media"
    return "client-server"


def _needs(path: str) -> str | None:
    if "requestToken" in path or path.endswith(("/3pid/add", "/3pid/delete", "/account/3pid")):
        return "email or SMS"
    if any(k in path for k in ("/3pid/bind", "/3pid/unbind", "/3pid/onbind", "third_party_invite")):
        return "identity server"
    if "3pid_invite" in path:
        return "identity server"
    return None


#: Operations the checkout's files do not date (no annotation, no changelog of theirs in the
#: checkout): relations came with Matrix 1.3 (MSC2675), OAuth 2.0 server metadata with 1.15
#: (MSC2965).
_RELATIONS = "GET /_matrix/client/v1/rooms/{roomId}/relations/{eventId}"
UNDATED = {
    "GET /_matrix/client/v1/auth_metadata": "1.15",
    _RELATIONS: "1.3",
    _RELATIONS + "/{relType}": "1.3",
    _RELATIONS + "/{relType}/{eventType}": "1.3",
}


#: Operations the spec makes optional, which a server may go without and still implement a
#: version: single sign-on (only servers offering ``m.login.sso``), ``/login/get_token``
#: ("Optional endpoint") and the OAuth 2.0 API's server metadata.
OPTIONAL = {
    "GET /_matrix/client/v3/login/sso/redirect": "single sign-on",
    "GET /_matrix/client/v3/login/sso/redirect/{idpId}": "single sign-on",
    "POST /_matrix/client/v1/login/get_token": "optional in the spec",
    # The spec: a server without the OAuth 2.0 API answers it 404 M_UNRECOGNIZED, as this
    # node does (shown as "off"); that is the answer it asks for, not a gap.
    "GET /_matrix/client/v1/auth_metadata": "OAuth 2.0 API",
    # Only a Policy Server implements it; others answer 404 M_UNRECOGNIZED (the spec's
    # "Unsupported Endpoints"), as this node does.
    "POST /_matrix/policy/v1/sign": "Policy Servers only",
}


def changelog_additions(spec_root: Path) -> dict[str, str]:
    """``{"GET /_matrix/client/v1/mutual_rooms": "1.19"}``: the operations the release
    changelogs of the checkout (``content/changelog/vX.Y.md``) say were added."""
    added: dict[str, str] = {}
    for file in (spec_root / "content" / "changelog").glob("v*.md"):
        version = file.stem.removeprefix("v")
        for method, path in re.findall(
            r"^\s*- Add `(GET|PUT|POST|DELETE) (/_matrix/[^`\s]+)`", file.read_text(), re.M
        ):
            added[f"{method} {path}"] = version
    return added


def read_operations(spec_root: Path) -> list[Operation]:
    """Every operation of the Client-Server, Server-Server and key APIs, sorted.  An
    operation without ``x-addedInMatrixVersion`` is dated by the changelogs (or
    :data:`UNDATED`), else taken to predate v1.1."""
    dated = {**UNDATED, **changelog_additions(spec_root)}
    found: list[Operation] = []
    for directory in ("client-server", "server-server"):
        for file in sorted((spec_root / "data" / "api" / directory).glob("*.yaml")):
            document: Any = yaml.safe_load(file.read_text(encoding="utf-8"))
            if not isinstance(document, dict) or not document.get("paths"):
                continue
            base = ""
            for server in document.get("servers") or []:
                base = server.get("variables", {}).get("basePath", {}).get("default", "")
            for path, item in document["paths"].items():
                for method in METHODS:
                    op = (item or {}).get(method)
                    if not isinstance(op, dict):
                        continue
                    # The spec writes a path twice with a trailing space (one operation
                    # described in two places, as /rooms/{roomId}/invite): one operation.
                    full = base + path.strip()
                    added = op.get("x-addedInMatrixVersion") or dated.get(
                        f"{method.upper()} {full}"
                    )
                    found.append(
                        Operation(
                            _api(directory, file.stem, full),
                            full,
                            method.upper(),
                            str(added) if added is not None else None,
                            f"{directory}/{file.name}",
                            _needs(full),
                        )
                    )
    unique: dict[str, Operation] = {}
    for op in found:
        unique.setdefault(op.key, op)
    return sorted(unique.values())


def concrete_path(template: str) -> str:
    """The template with dummy values (percent-encoded as a client would)."""

    def value(match: re.Match[str]) -> str:
        return quote(DUMMY_PARAMS.get(match.group(1), "kairanprobe"), safe="")

    return re.sub(r"\{(\w+)\}", value, template)


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.removeprefix("v").split("."))


def latest_release(spec_root: Path) -> str | None:
    """The latest released version the checkout names (``SNAPSHOT.txt``: "latest release
    v1.19"), if it says."""
    snapshot = spec_root / "SNAPSHOT.txt"
    if snapshot.is_file():
        found = re.search(r"latest release v(\d+\.\d+)", snapshot.read_text())
        if found:
            return found.group(1)
    return None


def versions_table(spec_root: Path) -> dict[str, list[str]]:
    """``{"v1.1": ["GET /_matrix/client/v3/...", ...], ...}``: the Client-Server operations
    (media included) each version added, every version up to the latest release listed
    (those that added none with an empty list); operations of unreleased versions and the
    optional ones (:data:`OPTIONAL`) left out."""
    ops = [o for o in read_operations(spec_root) if o.api in ("client-server", "media")]
    latest = latest_release(spec_root)
    numbers = {o.added_in for o in ops if o.added_in} | ({latest} if latest else set())
    top = max(numbers, key=version_key) if latest is None else latest
    minor_top = version_key(top)[1]
    table: dict[str, list[str]] = {f"v1.{m}": [] for m in range(1, minor_top + 1)}
    for op in ops:
        version = f"v{op.added_in}" if op.added_in else "v1.1"
        if version_key(version) <= version_key(top) and op.key not in OPTIONAL:
            table[version].append(op.key)
    return {v: sorted(keys) for v, keys in table.items()}


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0].startswith("-"):
        print("usage: python -m cli.spec_ops PATH_TO_MATRIX_SPEC", file=sys.stderr)
        return 2
    if not read_operations(Path(argv[0])):
        print(f"error: no OpenAPI operations under {argv[0]}/data/api", file=sys.stderr)
        return 2
    table = versions_table(Path(argv[0]))
    VERSIONS_FILE.write_text(json.dumps(table, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {VERSIONS_FILE} ({sum(map(len, table.values()))} operations)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
