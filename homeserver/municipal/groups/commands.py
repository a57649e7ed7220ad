"""``kairan group``: consortium user groups (spec/consortium.md, "User groups").

``create`` and ``add-room`` hand a request to the running node through its database and
wait for the outcome (homeserver/municipal/groups/requests.py says why the command does
not make the rooms itself); a request no node takes within ``--wait`` seconds is withdrawn
and nothing is made.  ``list`` reads the database.  Failures: one line, exit status 1.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from homeserver.municipal.groups import rules

T = TypeVar("T")
FEATURE = "groups"
MIGRATIONS = Path(__file__).parent / "migrations"
NODE_DIR = click.option(
    "--dir", "directory", required=True, type=click.Path(file_okay=False, path_type=Path),
    help="The node's directory (holds kairan.yaml).",
)  # fmt: skip
WAIT = click.option(
    "--wait", type=click.FloatRange(0.1, 3600), default=30.0, show_default=True,
    help="Seconds to wait for the running node to take the request.",
)  # fmt: skip


def fail(message: str) -> NoReturn:
    raise click.ClickException(message)


def checked(action: Callable[[], T]) -> T:
    try:
        return action()
    except rules.GroupError as e:
        fail(str(e))


@click.group("group")
def cli() -> None:
    """Consortium user groups: a space with themed rooms for the members' staff."""


@cli.command("create")
@click.option("--consortium", "consortium_id", required=True, help="The consortium's id.")
@click.option("--name", required=True, help="The group's name (its space's).")
@click.option("--room", "rooms", multiple=True, help="A themed room's name; repeat for each.")
@click.option("--topic", default=None, help="The space's topic (default: from the consortium).")
@click.option(
    "--creator", default=None,
    help="The local user who owns the group (default: the node's oldest admin account).",
)  # fmt: skip
@NODE_DIR
@WAIT
def create(
    consortium_id: str, name: str, rooms: tuple[str, ...], topic: str | None,
    creator: str | None, directory: Path, wait: float,
) -> None:  # fmt: skip
    """Make a group: a space in the directory and its themed rooms (the node must run)."""
    checked(
        lambda: (rules.check_name(name), rules.check_topic(topic), rules.check_rooms(list(rooms)))
    )
    body = {
        "action": "create", "consortium": consortium_id, "name": name, "topic": topic,
        "rooms": list(rooms), "creator": creator,
    }  # fmt: skip
    group = run_on_node(directory, lambda db: submit(db, body, wait))
    click.echo(
        f"group {group['space_id']}: {group['name']} (consortium {group['consortium']}, "
        f"creator {group['creator']}, {len(group['rooms'])} rooms)"
    )
    for room in group["rooms"]:
        click.echo(f"  {room['room_id']}\t{room['name']}")


@cli.command("add-room")
@click.option("--group", "space_id", required=True, help="The group's space ID.")
@click.option("--name", required=True, help="The themed room's name.")
@NODE_DIR
@WAIT
def add_room(space_id: str, name: str, directory: Path, wait: float) -> None:
    """Add a themed room to a group this node made (the node must run)."""
    checked(lambda: rules.check_name(name))
    body = {"action": "add_room", "space_id": space_id, "name": name}
    room = run_on_node(directory, lambda db: submit(db, body, wait))
    click.echo(f"{room['room_id']}\t{room['name']}")


@cli.command("list")
@NODE_DIR
@click.option("--json", "as_json", is_flag=True)
def list_groups(directory: Path, as_json: bool) -> None:
    """The groups this node made, with their themed rooms."""
    from homeserver.municipal.groups import storage
    from homeserver.municipal.groups.service import group_json

    async def read(db: Any) -> list[dict[str, Any]]:
        async with db.read() as conn:
            return [group_json(g) for g in await storage.list_groups(conn)]

    groups = run_on_node(directory, read)
    if as_json:
        click.echo(json.dumps(groups, ensure_ascii=False, indent=2))
        return
    if not groups:
        click.echo("no groups")
    for group in groups:
        click.echo(f"{group['space_id']}\t{group['consortium']}\t{group['name']}")
        for room in group["rooms"]:
            click.echo(f"  {room['room_id']}\t{room['name']}")


async def submit(db: Any, body: dict[str, Any], wait: float) -> dict[str, Any]:
    """Store the request, wait for the node's outcome; withdraw it if no node took it."""
    from homeserver.municipal.groups import storage

    request_id = secrets.token_hex(8)
    async with db.write() as conn:
        await storage.add_request(conn, request_id, json.dumps(body), int(time.time() * 1000))
    deadline = time.monotonic() + wait
    taken = False
    while True:
        async with db.read() as conn:
            found = await storage.request_state(conn, request_id)
        state, result = found if found is not None else (storage.FAILED, None)
        if state in (storage.DONE, storage.FAILED):
            async with db.write() as conn:
                await storage.forget_request(conn, request_id)
            outcome = json.loads(result) if result else {"errcode": "M_UNKNOWN", "error": "lost"}
            if state == storage.FAILED:
                fail(f"{outcome.get('errcode')}: {outcome.get('error')}")
            return dict(outcome)
        taken = taken or state == storage.WORKING
        if time.monotonic() > deadline:
            if not taken:
                async with db.write() as conn:
                    withdrawn = await storage.withdraw(conn, request_id)
                if withdrawn:  # failing inside the block would roll the withdrawal back
                    fail(
                        f"the node did not take the request within {wait:g} s (is it "
                        "running, with the groups feature?); nothing was made"
                    )
                taken = True  # it took it just now
                deadline = time.monotonic() + wait
                continue
            fail(
                f"the node took the request (id {request_id}) but has not finished within "
                f"{wait:g} s; kairan group list shows what was made"
            )
        await asyncio.sleep(0.1)


def run_on_node(directory: Path, action: Callable[[Any], Awaitable[T]]) -> T:
    """Open the database of a node that enables the groups feature, run ``action(db)``."""
    from homeserver.node.commands import run_with_database

    return run_with_database(
        directory, action, feature=FEATURE, migrations=MIGRATIONS, enabled_only=True
    )
