"""``kairan group`` against a running node (SQLite and PostgreSQL): create, add-room and
list through the real command; one-line failures with exit status 1; a request no running
node takes is withdrawn, and nothing is made."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from homeserver.config import ConfigError, load_config
from homeserver.config.listeners import FeatureSettings
from homeserver.municipal.groups import storage
from homeserver.node.app import build_services
from homeserver.node.setup import init_node
from homeserver.storage.database import open_database
from tests.homeserver.conftest import Node, running_node, start_node, stop_node
from tests.homeserver.municipal.consortium.nodes import kairan, use_database
from tests.homeserver.municipal.groups.nodes import (
    GROUPS,
    admin,
    features,
    hierarchy,
    hold_consortium,
    public_rooms,
    state,
)


def enable_groups(node: Node, db_url: str) -> None:
    """What start_node set in memory, in kairan.yaml too: the command reads it."""
    use_database(node, db_url)
    with (node.directory / "kairan.yaml").open("a", encoding="utf-8") as f:
        f.write("features:\n  consortium: {}\n  groups: {}\n")


async def test_group_commands_on_a_running_node(tmp_path: Path, db_url: str) -> None:
    a, runner = await start_node(tmp_path / "a", db_url, tls=True, features=features())
    stopped = False
    try:
        enable_groups(a, db_url)
        await hold_consortium([a], [a])
        async with a.client() as ca:
            # The default creator is the oldest admin account (not the later one).
            first = await admin(a, await ca.register("first"))
            await admin(a, await ca.register("second"))
            code, out = await kairan(
                "group", "create", "--consortium", "kanto", "--name", "防災連絡会",
                "--room", "災害対応", "--room", "行政DX", "--dir", a.directory,
            )  # fmt: skip
            assert code == 0, out
            lines = out.splitlines()
            assert lines[0].startswith("group !") and "防災連絡会 (consortium kanto" in lines[0]
            assert f"creator {first.user_id}, 2 rooms" in lines[0]
            space = lines[0].split()[1].rstrip(":")
            assert [line.split("\t")[1] for line in lines[1:]] == ["災害対応", "行政DX"]
            assert (await public_rooms(first))[space]["room_type"] == "m.space"
            assert await state(first, space, "jp.kairan.consortium") == {"id": "kanto"}
            rooms = [line.split("\t")[0].strip() for line in lines[1:]]
            assert set(await hierarchy(first, space)) == {space, *rooms}

            code, out = await kairan(
                "group", "add-room", "--group", space, "--name", "選挙事務", "--dir", a.directory
            )
            assert code == 0, out
            added = out.split("\t")[0]
            assert added.startswith("!") and out.rstrip().endswith("選挙事務")
            assert added in await hierarchy(first, space)

            code, out = await kairan("group", "list", "--dir", a.directory)
            assert code == 0, out
            assert out.splitlines()[0] == f"{space}\tkanto\t防災連絡会"
            assert [ln.split("\t")[1] for ln in out.splitlines()[1:]] == [
                "災害対応", "行政DX", "選挙事務",
            ]  # fmt: skip
            code, out = await kairan("group", "list", "--dir", a.directory, "--json")
            assert code == 0 and json.loads(out) == (await first.ok("GET", GROUPS))["groups"]

            # Failures: one line, exit status 1, nothing made.
            create = ["group", "create", "--consortium", "kanto", "--dir", a.directory]
            for args, message in (
                (["--name", ""], "Error: name must be a non-empty string"),
                (["--name", "x" * 101], "Error: name is longer than 100 characters"),
                (["--name", "g", "--room", "r", "--room", "r"], "Error: room names must differ"),
                (
                    ["--name", "g", "--consortium", "nope"],
                    "Error: M_NOT_FOUND: No consortium nope is held by this node",
                ),
                (
                    ["--name", "g", "--creator", f"@ghost:{a.server_name}"],
                    f"Error: M_INVALID_PARAM: no active user @ghost:{a.server_name} on this node",
                ),
            ):
                code, out = await kairan(*create, *args)
                assert (code, out.strip()) == (1, message), out
                assert "\n" not in out.strip()
            code, out = await kairan(
                "group", "add-room", "--group", "!nope:x", "--name", "r", "--dir", a.directory
            )
            assert (code, out.strip()) == (1, "Error: M_NOT_FOUND: No group !nope:x on this node")
            assert len((await first.ok("GET", GROUPS))["groups"]) == 1

            # The node stopped: no one takes the request; it is withdrawn, nothing made.
            await stop_node(a, runner)
            stopped = True
            code, out = await kairan(
                "group", "create", "--consortium", "kanto", "--name", "後から",
                "--dir", a.directory, "--wait", "0.5",
            )  # fmt: skip
            assert code == 1
            assert out.strip() == (
                "Error: the node did not take the request within 0.5 s (is it running, with "
                "the groups feature?); nothing was made"
            )
        # Withdrawn: no request left for the node to find when it starts again.
        code, out = await kairan("group", "list", "--dir", a.directory)
        assert code == 0 and "後から" not in out and "防災連絡会" in out
        db = await open_database(db_url)
        try:
            async with db.read() as conn:
                assert await storage.pending_requests(conn) == []
        finally:
            await db.close()
    finally:
        if not stopped:
            await stop_node(a, runner)


async def test_group_commands_need_the_feature(tmp_path: Path, db_url: str) -> None:
    async with running_node(tmp_path / "a", db_url) as a:
        use_database(a, db_url)
        code, out = await kairan(
            "group", "create", "--consortium", "kanto", "--name", "g", "--dir", a.directory
        )
        assert (code, out.strip()) == (
            1, f"Error: the groups feature is not enabled in {a.directory / 'kairan.yaml'}",
        )  # fmt: skip
        code, out = await kairan("group", "list", "--dir", tmp_path / "nowhere")
        assert code == 1 and out.startswith("Error: ") and "\n" not in out.strip()


async def test_groups_without_the_consortium_feature_does_not_start(
    tmp_path: Path, db_url: str
) -> None:
    init_node("127.0.0.1:18998", tmp_path / "n")
    loaded = load_config(tmp_path / "n")
    for enabled in (
        (FeatureSettings("groups", {}),),
        (FeatureSettings("groups", {}), FeatureSettings("consortium", {})),
        (FeatureSettings("consortium", {}), FeatureSettings("groups", {"poll_seconds": 0})),
    ):
        config = dataclasses.replace(loaded, database=db_url, features=enabled)
        with pytest.raises(ConfigError, match="feature 'groups': "):
            await build_services(config, fast_passwords=True)
