"""Test nodes running the consortium feature, and documents naming them."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from cli.main import main
from federation.signing import SigningKey
from homeserver.config.listeners import FeatureSettings
from homeserver.municipal.consortium.gossip import Gossip
from homeserver.municipal.consortium.service import ConsortiumService
from tests.homeserver.conftest import Node, running_nodes
from tests.homeserver.municipal.consortium.docs import DAY_MS, first_version, sign_all


@contextlib.asynccontextmanager
async def running(
    tmp_path: Path, *specs: tuple[str, str, dict[str, Any]]
) -> AsyncIterator[list[Node]]:
    """Nodes over TLS: (name, database URL, config changes) each."""
    async with running_nodes() as group:
        for name, url, changes in specs:
            await group.start(tmp_path / name, url, tls=True, **changes)
        yield group.nodes


def feature(**settings: Any) -> tuple[FeatureSettings, ...]:
    return (FeatureSettings("consortium", {"poll_seconds": 0.2, **settings}),)


def service_of(node: Node) -> ConsortiumService:
    service: ConsortiumService = node.services.extensions.provided["consortium.service"]
    return service


def gossip_of(node: Node) -> Gossip:
    for stop in node.services.extensions.on_stop:
        owner = getattr(stop, "__self__", None)
        if isinstance(owner, Gossip):
            return owner
    raise AssertionError("no consortium gossip on this node")


def document_for(
    nodes: list[Node], *, keys: dict[str, SigningKey] | None = None, **kwargs: Any
) -> dict[str, Any]:
    """Version 1 naming ``nodes`` with their real signing keys (``keys``: others)."""
    members = {n.server_name: n.services.signing_key for n in nodes}
    members.update(keys or {})
    return first_version(members, valid_until_ts=int(time.time() * 1000) + 30 * DAY_MS, **kwargs)


async def kairan(*args: str | Path) -> tuple[int, str]:
    """The kairan command, in a thread (it runs its own event loop)."""

    def run() -> tuple[int, str]:
        result = CliRunner().invoke(main, [str(a) for a in args])
        return result.exit_code, result.output

    return await asyncio.to_thread(run)


async def until(condition: Callable[[], bool], seconds: float = 10.0) -> float:
    """Wait for ``condition``; how long it took (fails after ``seconds``)."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > seconds:
            raise AssertionError(f"not within {seconds} s")
        await asyncio.sleep(0.05)
    return time.monotonic() - start


def use_database(node: Node, db_url: str) -> None:
    """Point the node's kairan.yaml at the database the test gave it (start_node sets it
    in memory only), so that ``kairan consortium --dir`` opens the same one."""
    path = node.directory / "kairan.yaml"
    lines = path.read_text(encoding="utf-8").splitlines()
    lines = [f'database: "{db_url}"' if ln.startswith("database:") else ln for ln in lines]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def held_version(node: Node, doc_id: str = "kanto") -> int:
    doc = service_of(node).consortium(doc_id)
    return 0 if doc is None else doc.version


__all__ = ["sign_all"]
