"""The spec's OpenAPI for the Client-Server API, as response validators for the tests.

:class:`ClientServerSpec` reads every ``data/api/client-server/*.yaml`` of a matrix-spec
checkout (https://github.com/matrix-org/matrix-spec; the files are not ours to copy),
resolves ``$ref`` (relative files, JSON pointers, also across to ``data/event-schemas``)
and validates a response body against the schema that the spec gives for (method, path,
status).  Paths may be concrete (``/_matrix/client/v3/rooms/!a/send/m.room.message/1``):
they are matched against the path templates of every file with its ``basePath``, the most
specific template winning.

Validation is switched on by the conformance run (``make conformance``): the env var
``KAIRAN_MATRIX_SPEC`` or the pytest option ``--matrix-spec`` names the checkout (see
tests/homeserver/conformance.py).  Without either, :class:`ValidatingClient` is the plain
test client: the tests' own assertions run, the spec's are not checked.
"""

from __future__ import annotations

import dataclasses
import re
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urldefrag, urljoin

import jsonschema
import referencing
import referencing.jsonschema
import yaml
from referencing.exceptions import Unresolvable

from tests.homeserver.client import Client, Response

ENV_VAR = "KAIRAN_MATRIX_SPEC"
OPTION = "--matrix-spec"
METHODS = ("get", "put", "post", "delete", "head", "options", "patch")


class SpecNotFound(Exception):
    pass


class SchemaMismatch(AssertionError):
    pass


def spec_root(raw: str, source: str) -> Path:
    """The matrix-spec checkout at ``raw`` (named by ``source``, e.g. ``$KAIRAN_MATRIX_SPEC``
    or ``--matrix-spec``); :class:`SpecNotFound` with a one-line reason if it is not one."""
    root = Path(raw).expanduser()
    if not (root / "data" / "api" / "client-server").is_dir():
        raise SpecNotFound(
            f"Matrix spec not found ({source}={raw}): expected a checkout of "
            "https://github.com/matrix-org/matrix-spec with data/api/client-server/*.yaml"
        )
    return root.resolve()


def _pointer(document: Any, fragment: str) -> Any:
    node = document
    for part in fragment.lstrip("/").split("/") if fragment.strip("/") else []:
        key = unquote(part).replace("~1", "/").replace("~0", "~")
        node = node[int(key)] if isinstance(node, list) else node[key]
    return node


@dataclasses.dataclass(frozen=True)
class Operation:
    method: str
    template: str  # with the file's basePath
    file: Path
    pointer: str  # JSON pointer to the operation object in its file
    regex: re.Pattern[str]
    specificity: int  # literal characters in the template: more means more specific

    @property
    def uri(self) -> str:
        return self.file.as_uri()

    def __str__(self) -> str:
        return f"{self.method.upper()} {self.template} ({self.file.name})"


class ClientServerSpec:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.api_dir = root / "data" / "api" / "client-server"
        self._documents: dict[str, Any] = {}
        self.operations: list[Operation] = []
        for path in sorted(self.api_dir.glob("*.yaml")):
            document = self.document(path.as_uri())
            base = _base_path(document)
            for template, item in (document.get("paths") or {}).items():
                for method in METHODS:
                    if method in item:
                        full = base + template
                        self.operations.append(
                            Operation(
                                method=method,
                                template=full,
                                file=path,
                                pointer="/paths/"
                                + template.replace("~", "~0").replace("/", "~1")
                                + "/"
                                + method,
                                regex=_template_regex(full),
                                specificity=len(re.sub(r"\{[^}]+\}", "", full)),
                            )
                        )
        self.registry: referencing.Registry[Any] = referencing.Registry(retrieve=self._retrieve)  # type: ignore[call-arg]
        self._validators: dict[tuple[str, str], jsonschema.protocols.Validator | None] = {}
        self.validated = 0  # response bodies checked, for the conformance run's summary

    # ------------------------------------------------------------- files and refs

    def document(self, uri: str) -> Any:
        uri = urldefrag(uri).url
        if uri not in self._documents:
            path = Path(unquote(uri.removeprefix("file://")))
            with path.open(encoding="utf-8") as f:
                self._documents[uri] = _string_keys(yaml.safe_load(f))
        return self._documents[uri]

    def _retrieve(self, uri: str) -> referencing.Resource[Any]:
        if not uri.startswith("file://"):
            raise Unresolvable(uri)
        return referencing.Resource.from_contents(
            self.document(uri), default_specification=referencing.jsonschema.DRAFT202012
        )

    def resolve(self, uri: str, node: Any) -> tuple[str, Any]:
        """Follow ``$ref`` chains of a non-schema OpenAPI object (a response, a parameter)."""
        seen = set()
        while isinstance(node, dict) and "$ref" in node:
            target = urljoin(uri, node["$ref"])
            if target in seen:
                raise ValueError(f"$ref cycle at {target}")
            seen.add(target)
            uri, fragment = urldefrag(target)
            node = _pointer(self.document(uri), fragment)
        return uri, node

    # ------------------------------------------------------------- operations

    def find(self, method: str, path: str) -> Operation:
        """The operation for a concrete or template path (without query string)."""
        method = method.lower()
        path = path.split("?", 1)[0]
        candidates = [
            op
            for op in self.operations
            if op.method == method and (op.template == path or op.regex.fullmatch(path))
        ]
        if not candidates and not path.endswith("/"):
            # An empty last parameter (a state key "") may be left out with its slash.
            return self.find(method, path + "/")
        if not candidates:
            raise KeyError(f"the spec has no operation {method.upper()} {path}")
        return max(candidates, key=lambda op: (op.template == path, op.specificity))

    def statuses(self, op: Operation) -> list[str]:
        _, operation = self.resolve(op.uri, _pointer(self.document(op.uri), op.pointer))
        return sorted(str(s) for s in (operation.get("responses") or {}))

    def validator(self, op: Operation, status: int) -> jsonschema.protocols.Validator | None:
        """The validator of the JSON body for ``status``; ``None`` when the spec defines no
        JSON schema for it.  An undocumented 4xx/5xx falls back to the standard error body."""
        key = (str(op), str(status))
        if key in self._validators:
            return self._validators[key]
        operation = _pointer(self.document(op.uri), op.pointer)
        responses = operation.get("responses") or {}
        ref_uri: str | None = None
        if str(status) in responses:
            uri, response = self.resolve(op.uri, responses[str(status)])
            schema = (((response.get("content") or {}).get("application/json")) or {}).get("schema")
            if schema is not None:
                # Point into the file so relative refs resolve from where the schema lives.
                ref_uri = uri + "#" + _pointer_to(self.document(uri), schema)
        elif status >= 400:
            ref_uri = (self.api_dir / "definitions" / "errors" / "error.yaml").as_uri()
        if ref_uri is None:
            self._validators[key] = None
            return None
        validator = jsonschema.Draft202012Validator(
            {"$ref": ref_uri}, registry=self.registry, format_checker=None
        )
        self._validators[key] = validator
        return validator

    def validate(self, method: str, path: str, status: int, body: Any) -> Operation:
        """Raise :class:`SchemaMismatch` unless ``body`` is what the spec allows."""
        op = self.find(method, path)
        self.validated += 1
        documented = self.statuses(op)
        if str(status) not in documented and status < 400:
            raise SchemaMismatch(f"{op}: status {status} is not one of {documented}")
        validator = self.validator(op, status)
        if validator is None:
            return op
        errors = sorted(
            (e for e in validator.iter_errors(body) if not _overlapping_one_of(e)),
            key=lambda e: list(e.absolute_path),
        )
        if errors:
            details = "\n".join(
                f"  at /{'/'.join(map(str, e.absolute_path))}: {e.message[:300]}"
                for e in errors[:10]
            )
            raise SchemaMismatch(f"{op} status {status}: body does not match the spec:\n{details}")
        return op

    @cached_property
    def templates(self) -> set[tuple[str, str]]:
        return {(op.method, op.template) for op in self.operations}


def _overlapping_one_of(error: jsonschema.ValidationError) -> bool:
    """A ``oneOf`` failing only because the body matches several branches: the spec's
    alternatives overlap (e.g. GET state's "content, any object" or "a ClientEvent")."""
    return error.validator == "oneOf" and not error.context


def _pointer_to(document: Any, target: Any) -> str:
    """The JSON pointer of ``target`` (by identity) inside ``document``."""
    stack: list[tuple[Any, str]] = [(document, "")]
    while stack:
        node, where = stack.pop()
        if node is target:
            return where
        if isinstance(node, dict):
            stack.extend(
                (v, f"{where}/{str(k).replace('~', '~0').replace('/', '~1')}")
                for k, v in node.items()
            )
        elif isinstance(node, list):
            stack.extend((v, f"{where}/{i}") for i, v in enumerate(node))
    raise ValueError("schema not found in its document")


def _base_path(document: Any) -> str:
    for server in document.get("servers") or []:
        base = ((server.get("variables") or {}).get("basePath") or {}).get("default")
        if isinstance(base, str):
            return base.rstrip("/")
    return ""


def _template_regex(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}]+\})", template)
    return re.compile(
        "".join("[^/]*" if p.startswith("{") and p.endswith("}") else re.escape(p) for p in parts)
    )


def _string_keys(node: Any) -> Any:
    """YAML reads unquoted status codes (200:) as ints; OpenAPI means strings."""
    if isinstance(node, dict):
        return {str(k): _string_keys(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_string_keys(v) for v in node]
    return node


class ValidatingClient(Client):
    """A test client that checks what every test should hold of any response (no 5xx but
    the spec's "not yet uploaded" 504; error bodies are JSON objects) and, when the run has
    the spec (``spec`` is not ``None``), validates every response body against it."""

    def __init__(self, base_url: str, spec: ClientServerSpec | None) -> None:
        super().__init__(base_url)
        self.spec = spec
        self.mismatches: list[str] = []
        #: Requests to paths the spec has no operation for (not validated).
        self.unknown: list[str] = []
        self.seen: set[tuple[str, str]] = set()  # (METHOD, template)

    async def request(self, method: str, path: str, body: Any = None, **kwargs: Any) -> Response:
        response = await super().request(method, path, body, **kwargs)
        if response.status >= 500:  # only the spec's "not yet uploaded" media answer
            assert response.status == 504, (method, path, response)
            assert response.body["errcode"] == "M_NOT_YET_UPLOADED", (method, path, response)
        if response.status >= 400:
            assert isinstance(response.body, dict), (method, path, response)
        if self.spec is None:
            return response
        try:
            op = self.spec.validate(method, path, response.status, response.body)
        except SchemaMismatch as e:
            self.mismatches.append(f"{method} {path} -> {response.status}: {e}")
        except KeyError as e:  # no such operation: Kairan's own API, or a path made bad
            self.unknown.append(f"{method} {path} -> {response.status}: {e}")
        else:
            self.seen.add((method.upper(), op.template))
        return response

    def check(self, *expected: str) -> None:
        """With the spec: no mismatches so far, and each of ``expected`` ("GET /template")
        was exercised.  Without it there is nothing to check (the tests assert the rest)."""
        if self.spec is None:
            return
        assert not self.mismatches, "\n".join(self.mismatches)
        seen = {f"{m} {t}" for m, t in self.seen}
        missing = [e for e in expected if e not in seen]
        assert not missing, f"not exercised: {missing}"


def conforms(spec: ClientServerSpec | None, method: str, path: str, status: int, body: Any) -> None:
    """Validate one response body when the run has the spec; nothing otherwise."""
    if spec is not None:
        spec.validate(method, path, status, body)


__all__ = [
    "ENV_VAR",
    "OPTION",
    "ClientServerSpec",
    "Operation",
    "SchemaMismatch",
    "SpecNotFound",
    "ValidatingClient",
    "conforms",
    "spec_root",
]
