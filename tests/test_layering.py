"""The import layering, read from the import graph (TYPE_CHECKING imports included).

The contracts live in pyproject.toml (``[tool.importlinter]``): the engine imports nothing
of the node, its pure modules do no I/O, the node never imports the CLI or interop, only
homeserver.storage speaks SQL (and a feature's own storage), route modules do not reach
storage, the node's packages import only the layers below them (the features of
homeserver.municipal on top: the core never imports a feature), and no package's children
import each other in a cycle.  Here they are checked by import-linter, and two things it does not say: no cycle
among modules at all (a package and its own modules included), and every engine module is
classified as pure or transport.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("federation", "homeserver", "cli")
#: The engine modules that do I/O; every other one is listed in the "engine-pure" contract.
TRANSPORT = {"client", "server", "sender", "keyring", "discovery"}


def _contracts() -> dict[str, dict[str, object]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return {c["id"]: c for c in config["tool"]["importlinter"]["contracts"]}


def _graph() -> grimp.ImportGraph:
    return grimp.build_graph(*PACKAGES, exclude_type_checking_imports=False)


def test_import_contracts_are_kept() -> None:
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from importlinter.cli import lint_imports;"
            " sys.exit(lint_imports(no_cache=True, no_logo=True))",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, (
        "an import breaks the layering contracts of pyproject.toml [tool.importlinter]:\n"
        + run.stdout
        + run.stderr
    )


def test_no_import_cycles_among_modules() -> None:
    graph = _graph()
    cycles: dict[frozenset[str], tuple[str, ...]] = {}
    for importer in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            back = graph.find_shortest_chain(importer=imported, imported=importer)
            if back is not None:
                cycle = (importer, *back)
                cycles.setdefault(frozenset(cycle), cycle)
    assert not cycles, "import cycles (each 'a -> b' means a imports b):\n" + "\n".join(
        " -> ".join(cycle) for cycle in sorted(cycles.values())
    )


def test_every_engine_module_is_pure_or_transport() -> None:
    sources = _contracts()["engine-pure"]["source_modules"]
    assert isinstance(sources, list)
    pure = {m.removeprefix("federation.") for m in sources}
    children = {m.removeprefix("federation.") for m in _graph().find_children("federation")}
    unclassified = children - pure - TRANSPORT
    assert not unclassified, (
        f"engine modules {sorted(unclassified)} are neither in the 'engine-pure' contract of "
        "pyproject.toml nor in TRANSPORT here: list each where it belongs"
    )
    assert not pure & TRANSPORT
