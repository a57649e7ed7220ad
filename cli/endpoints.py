"""``kairan endpoints``: which operations of the Matrix spec this node answers.

It reads every path and method of the spec's OpenAPI files (:mod:`cli.spec_ops`), starts a
throwaway node in-process (a temporary directory, SQLite, a free loopback port, the
default config: registration closed, no login tokens), and sends each operation one
request over HTTP, without an access token and with an empty JSON object as body.

How an answer is read (the honest way, and why):

* *answered*: anything but 404/405 ``M_UNRECOGNIZED`` -- a 401 for the missing token, a 400
  for the empty body, a 200.  The node has a handler that took the request.
* *off*: the router has a route of exactly this shape, but its handler answered
  ``M_UNRECOGNIZED``: an optional endpoint this node's config turns off (as
  ``/login/get_token`` by default) or one the node deliberately refuses (the
  Server-Server v1 ``invite``, superseded by v2).
* *missing*: no route of this shape (404/405 ``M_UNRECOGNIZED``, from the router or from a
  catch-all route such as the federation API's, which answers every unknown path so).

No access token means no handler does anything for real (no logout, no upload), and
nothing is fetched from other servers.  Operations that need an identity server, email or
SMS, which Kairan deliberately lacks, are flagged as such, and so are those the spec makes
optional (single sign-on, ``/login/get_token``), which do not count against a version.
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import click

from cli.spec_ops import (
    OPTIONAL,
    Operation,
    concrete_path,
    latest_release,
    read_operations,
    version_key,
)

ANSWERED, OFF, MISSING = "answered", "off", "missing"
API_ORDER = ("client-server", "media", "server-server", "keys")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def probe(operations: list[Operation]) -> dict[Operation, str]:
    """Each operation's state on a throwaway node (see the module doc)."""
    import aiohttp
    from aiohttp import web

    from homeserver.config import RateLimit, load_config
    from homeserver.node.app import build_services, close_services, make_app
    from homeserver.node.setup import init_node

    with tempfile.TemporaryDirectory(prefix="kairan-endpoints-") as tmp:
        port = _free_port()
        init_node(f"127.0.0.1:{port}", Path(tmp))
        # No rate limit: a 429 would read as an answer.
        config = dataclasses.replace(
            load_config(Path(tmp)), rate_limit=RateLimit(per_second=1e9, burst=10**9)
        )
        services = await build_services(config, fast_passwords=True)
        app = make_app(services)
        runner = web.AppRunner(app)
        await runner.setup()
        try:
            await web.TCPSite(runner, "127.0.0.1", port).start()
            base = f"http://127.0.0.1:{port}"
            states: dict[Operation, str] = {}
            timeout = aiohttp.ClientTimeout(total=10)
            async with aiohttp.ClientSession(timeout=timeout) as session:
                for op in operations:
                    path = concrete_path(op.path)
                    body: dict[str, Any] | None = (
                        {} if op.method in ("POST", "PUT", "PATCH") else None
                    )
                    async with session.request(op.method, base + path, json=body) as response:
                        status = response.status
                        answer: Any = None
                        if response.content_type == "application/json":
                            answer = await response.json()
                    unrecognized = status in (404, 405) and (
                        isinstance(answer, dict) and answer.get("errcode") == "M_UNRECOGNIZED"
                    )
                    if not unrecognized:
                        states[op] = ANSWERED
                        continue
                    states[op] = OFF if await routed(app, op.method, op.path) else MISSING
            return states
        finally:
            await runner.cleanup()
            await close_services(services)


async def routed(app: Any, method: str, template: str) -> bool:
    """Whether the app's router has a route of the template's shape for ``method`` (the
    answer then comes from a handler of that operation, not a catch-all)."""
    from aiohttp.test_utils import make_mocked_request

    match = await app.router.resolve(make_mocked_request(method, concrete_path(template)))
    resource = match.route.resource
    return (
        match.http_exception is None
        and resource is not None
        and same_shape(resource.canonical, template)
    )


def same_shape(route: str, template: str) -> bool:
    """Whether a route's path serves a spec template: as many segments, the template's
    literal ones matched by the route's literal or variable ones, its variables by the
    route's variables (a catch-all ``/_matrix/federation/v1/{tail}`` has not the shape of
    ``.../3pid/onbind``)."""
    ours, theirs = route.split("/"), template.split("/")
    if len(ours) != len(theirs):
        return False
    for mine, spec in zip(ours, theirs, strict=True):
        if mine.startswith("{"):
            continue
        if spec.startswith("{") or mine != spec:
            return False
    return True


def complete_versions(
    states: dict[Operation, str], latest: str | None = None
) -> tuple[list[str], dict[str, int]]:
    """The Client-Server versions (media included) all of whose operations are answered,
    and for each version how many of its operations (its own and earlier) are not; every
    version from v1.1 to ``latest`` (default: the newest an operation names)."""
    cs = [op for op in states if op.api in ("client-server", "media") and op.key not in OPTIONAL]
    newest = max(
        [op.added_in or "1.1" for op in cs] + ([latest] if latest else []), key=version_key
    )
    if latest is not None:
        cs = [op for op in cs if version_key(op.added_in or "1.1") <= version_key(latest)]
        newest = latest
    versions = [f"1.{minor}" for minor in range(1, version_key(newest)[1] + 1)]
    complete, gaps = [], {}
    for version in versions:
        upto = [op for op in cs if version_key(op.added_in or "1.1") <= version_key(version)]
        gaps[f"v{version}"] = sum(states[op] != ANSWERED for op in upto)
        if gaps[f"v{version}"] == 0:
            complete.append(f"v{version}")
    return complete, gaps


def render(
    states: dict[Operation, str], *, missing_only: bool, latest: str | None = None
) -> list[str]:
    lines: list[str] = []
    by_api: dict[str, list[Operation]] = defaultdict(list)
    for op in sorted(states):
        by_api[op.api].append(op)
    for api in API_ORDER:
        ops = by_api.get(api, [])
        if not ops:
            continue
        counts = {s: sum(states[o] == s for o in ops) for s in (ANSWERED, OFF, MISSING)}
        lines.append(
            f"== {api}: {counts[ANSWERED]} of {len(ops)} answered"
            f", {counts[OFF]} off, {counts[MISSING]} missing"
        )
        for op in ops:
            state = states[op]
            if missing_only and state == ANSWERED:
                continue
            flag = f"  (needs {op.needs})" if op.needs else ""
            if op.key in OPTIONAL:
                flag += f"  (optional: {OPTIONAL[op.key]})"
            added = f"v{op.added_in}" if op.added_in else ""
            lines.append(f"  {state:<9}{op.method:<7}{op.path}  {added}{flag}".rstrip())
    complete, gaps = complete_versions(states, latest)
    lines.append("== versions (client-server and media)")
    lines.append("  complete: " + (", ".join(complete) or "none"))
    for version, gap in gaps.items():
        if gap:
            lines.append(f"  {version}: {gap} operations (of it and earlier) not answered")
    needing = [o for o in states if o.needs and states[o] != ANSWERED]
    lines.append(f"  not answered but needing an identity server, email or SMS: {len(needing)}")
    return lines


@click.command("endpoints")
@click.option(
    "--spec",
    "spec_root",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="A checkout of https://github.com/matrix-org/matrix-spec.",
)
@click.option("--missing", is_flag=True, help="List only the operations not answered.")
def endpoints(spec_root: Path, missing: bool) -> None:
    """Which operations of the spec's Client-Server, media, Server-Server and key APIs this
    node answers, probed over HTTP on a throwaway node."""
    operations = read_operations(spec_root)
    if not operations:
        raise click.ClickException(f"no OpenAPI operations under {spec_root}/data/api")
    states = asyncio.run(probe(operations))
    for line in render(states, missing_only=missing, latest=latest_release(spec_root)):
        click.echo(line)
