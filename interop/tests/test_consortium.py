"""Consortia across real nodes: three Kairan nodes, A and B in consortium "kanto" with
``federation.closed``, C outside; with a Synapse member S too when the selected pairs use
Synapse (it knows nothing of consortia: its users join shared rooms, the ACL binds it).

A and B share a room bound to kanto; C cannot join it (A refuses C, S's ACL too) and A's
user cannot invite C's; a version adding C, applied on A alone, reaches B and C's user then
joins; a version removing B updates the room's server ACL on every member, and B's users
can no longer join through any of them.

Its own harness: nodes on distinct loopback addresses (server ACLs and member lists match
hosts, not ports).  Kairan nodes are black boxes: kairan.yaml edited before start, the
``kairan consortium`` and ``kairan key`` commands run as subprocesses.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from interop.client import Client, MatrixError
from interop.harness import REPO_ROOT, Harness, Node
from interop.tests.support import (
    parse_pairs,
    recent_bodies,
    server_of,
    wait_for_message,
    wait_joined,
)
from interop.wait import SyncWatcher, wait_until

BINDING = "jp.kairan.consortium"
ACL = "m.room.server_acl"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "members" in metafunc.fixturenames:
        kinds = ["kairan"]
        pairs = parse_pairs(str(metafunc.config.getoption("--pairs")))
        if any("synapse" in pair for pair in pairs):
            kinds.append("kairan+synapse")
        metafunc.parametrize("members", kinds, indirect=True, ids=kinds)


def kairan(*args: str | Path) -> str:
    """A ``kairan`` command (``python -m cli.main``); its output, or the test fails."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", *map(str, args)],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    command = " ".join(map(str, args))
    assert done.returncode == 0, f"kairan {command} exited {done.returncode}: {done.stderr}"
    return done.stdout


def closed_member(node: Node) -> None:
    """Enable the consortium feature and closed federation in the node's kairan.yaml."""
    path = node.directory / "kairan.yaml"
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    config.setdefault("federation", {})["closed"] = True
    config.setdefault("features", {})["consortium"] = {
        "poll_seconds": 0.5, "acl_delay_seconds": 2,
    }  # fmt: skip
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")


#: Each Kairan node's staff (the organisation directory's CSV), one 課長 each.
STAFF = {
    "A": "012238,根室市役所,ねむろしやくしょ,総務課,山田 太郎,やまだ たろう,課長,1201,",
    "B": "016918,別海町役場,べつかいちょうやくば,総務課,田中 一郎,たなか いちろう,課長,201,",
    "C": "016926,中標津町役場,なかしべつちょうやくば,防災課,鈴木 花子,すずき はなこ,課長,301,",
}
CSV_HEADER = "団体コード,団体名,団体名よみ,部署,氏名,よみ,役職,内線\n"
DIRECTORY_SEARCH = "/_matrix/client/unstable/jp.kairan/directory/search"


def with_directory(node: Node, tmp_path: Path) -> None:
    """Enable the organisation directory (its peers: the node's consortia) and import the
    node's staff with ``kairan org import`` before the node starts."""
    path = node.directory / "kairan.yaml"
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    config.setdefault("features", {})["directory"] = {"search_timeout_seconds": 10}
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    staff = tmp_path / f"staff-{node.name}.csv"
    staff.write_text(CSV_HEADER + STAFF[node.name] + "\n", encoding="utf-8")
    kairan("org", "import", staff, "--dir", node.directory)


async def directory_names(client: Client, term: str) -> list[str]:
    found = await client.request("POST", DIRECTORY_SEARCH, {"search_term": term})
    return sorted(r["name"] for r in found["results"])


def verify_key(node: Node) -> str:
    """``ed25519:VERSION BASE64`` of the node's signing key file (Kairan and Synapse use
    the same format)."""
    return kairan("key", "show", node.directory / "signing.key").strip().splitlines()[-1]


def host(node: Node) -> str:
    return node.host


@dataclass
class Consortium:
    harness: Harness
    a: Node
    b: Node
    c: Node
    s: Node | None
    doc: Path
    admin: Path

    def members(self) -> list[Node]:
        return [n for n in (self.a, self.b, self.s) if n is not None]

    def new_version(self, *args: str) -> None:
        """``kairan consortium add/remove`` (a draft), then signed by the admin."""
        kairan("consortium", *args)
        kairan("consortium", "sign", self.doc, "--admin-key", self.admin)

    def client(self, node: Node, name: str) -> Client:
        return Client(node.base_url, self.harness.certs.ca, name=name)


@pytest.fixture
def members(request: pytest.FixtureRequest) -> str:
    kinds: str = request.param
    return kinds


@pytest.fixture
def consortium(members: str, tmp_path: Path) -> Iterator[Consortium]:
    harness = Harness(distinct_hosts=True, log_level="INFO")
    try:
        a, b, c = (harness.add_kairan(name) for name in ("A", "B", "C"))
        s = harness.add_synapse("S") if members == "kairan+synapse" else None
        closed_member(a)
        closed_member(b)
        for node in (a, b, c):
            with_directory(node, tmp_path)
        admin, doc = tmp_path / "admin.key", tmp_path / "kanto.json"
        kairan("key", "generate", "--out", admin)
        kairan("consortium", "new", "--id", "kanto", "--name", "関東LGWAN連携",
               "--admin-key", admin, "--threshold", "1", "--out", doc)  # fmt: skip
        found = Consortium(harness, a, b, c, s, doc, admin)
        for node in found.members():
            kairan("consortium", "add", doc, "--server", node.server_name,
                   "--verify-key", verify_key(node))  # fmt: skip
        kairan("consortium", "sign", doc, "--admin-key", admin)
        harness.start_all()
        for node in (a, b):
            kairan("consortium", "apply", doc, "--dir", node.directory)
        yield found
    except BaseException:
        harness.keep = True
        raise
    finally:
        harness.close()


@pytest.fixture
async def clients(consortium: Consortium) -> AsyncIterator[list[Client]]:
    made: list[Client] = []
    yield made
    for client in made:
        await client.close()


async def acl_of(client: Client, room: str, hosts: list[str]) -> bool:
    acl = await client.state_event(room, ACL)
    return acl is not None and acl.get("allow") == sorted(hosts)


async def refused(action: Awaitable[object]) -> MatrixError:
    try:
        await action
    except MatrixError as e:
        return e
    raise AssertionError("not refused")


async def test_consortium_room_follows_the_members(
    consortium: Consortium, clients: list[Client]
) -> None:
    k = consortium

    async def user(node: Node, name: str) -> Client:
        client = k.client(node, name)
        clients.append(client)
        await client.register(f"{name}-{os.urandom(4).hex()}")
        return client

    alice, bob, carol = await user(k.a, "alice"), await user(k.b, "bob"), await user(k.c, "carol")
    sam = await user(k.s, "sam") if k.s is not None else None
    # A and B share a room bound to kanto: the ACL is set at once.
    room = await alice.create_room(preset="public_chat", name="kanto shared")
    await alice.send_state(room, BINDING, {"id": "kanto", "body": "関東LGWAN連携の共有ルーム"})
    hosts = [host(n) for n in k.members()]
    await wait_until(lambda: acl_of(alice, room, hosts), "the ACL of the bound room on A")
    # B's user joins (retried: B puts the applied document in force within poll_seconds).
    await wait_until(lambda: bob.join(room, via=[server_of(alice)]), "bob to join through A")
    joined = [alice, bob]
    if sam is not None:
        await sam.join(room, via=[server_of(alice)])
        joined.append(sam)
    await wait_joined(joined, room, joined)
    await bob.send_text(room, "from B")
    await alice.send_text(room, "from A")
    for client in joined:
        await wait_for_message(client, room, "from B")
        await wait_for_message(client, room, "from A")
        await wait_until(lambda c=client: acl_of(c, room, hosts), f"{client.user_id}: the ACL")

    # A and B search each other's directory (the consortium's members are the peers);
    # C's staff are not found (C is outside).
    async def finds(client: Client, names: list[str]) -> bool:
        return await directory_names(client, "課長") == names

    await wait_until(lambda: finds(alice, ["山田 太郎", "田中 一郎"]), "A to find B's staff")
    await wait_until(lambda: finds(bob, ["山田 太郎", "田中 一郎"]), "B to find A's staff")
    assert await directory_names(alice, "別海") == ["田中 一郎"]

    # C is outside: refused by A (closed) and, through S, by the ACL S enforces; A's user
    # cannot invite C's.
    error = await refused(carol.join(room, via=[server_of(alice)]))
    assert error.status in (403, 404, 502), error
    if sam is not None:
        error = await refused(carol.join(room, via=[server_of(sam)]))
        assert error.status == 403, error
    error = await refused(alice.invite(room, carol.user_id))
    assert (error.status, error.errcode) == (403, "M_FORBIDDEN"), error
    assert await alice.membership(room, carol.user_id) is None

    # A version adding C, applied on A alone, reaches B; C's user then joins.
    k.new_version("add", k.doc, "--server", k.c.server_name, "--verify-key", verify_key(k.c))
    kairan("consortium", "apply", k.doc, "--dir", k.a.directory)

    async def b_holds(version: int) -> bool:
        return f"version {version}" in kairan("consortium", "show", "--dir", k.b.directory)

    await wait_until(lambda: b_holds(2), "B to hold version 2 (pushed by A)")
    hosts.append(host(k.c))
    for client in joined:
        await wait_until(lambda c=client: acl_of(c, room, hosts), f"{client.user_id}: ACL with C")
    await wait_until(lambda: carol.join(room, via=[server_of(alice)]), "carol to join through A")
    joined.append(carol)
    await wait_joined(joined, room, joined)
    await alice.send_text(room, "welcome C")
    await wait_for_message(carol, room, "welcome C")
    # C is a member now: A's searches ask it too.
    await wait_until(
        lambda: finds(alice, ["山田 太郎", "田中 一郎", "鈴木 花子"]), "A to find C's staff"
    )

    # B removed: the ACL changes on every member; B's users join through none of them.
    k.new_version("remove", k.doc, "--server", k.b.server_name)
    kairan("consortium", "apply", k.doc, "--dir", k.a.directory)
    hosts.remove(host(k.b))
    for client in [alice, carol, *([sam] if sam else [])]:
        await wait_until(lambda c=client: acl_of(c, room, hosts), f"{client.user_id}: ACL w/o B")
    # B's node is still in the room, so its new user joins there locally and its user
    # talks; the members drop what B sends (A refuses B; C and S apply the ACL).  A
    # to-device message from B, sent after and not bound by the ACL, tells when C and S
    # have taken B's transaction.
    latecomer = await user(k.b, "bob2")
    await latecomer.join(room)
    await bob.send_text(room, "from B, removed")
    receivers = [carol, *([sam] if sam else [])]
    for receiver in receivers:
        await probe(bob, receiver)
        assert latecomer.user_id not in await receiver.joined_members(room)
        assert "from B, removed" not in await recent_bodies(receiver, room)
    assert latecomer.user_id not in await alice.joined_members(room)
    await alice.send_text(room, "after B")
    for receiver in receivers:
        await wait_for_message(receiver, room, "after B")


async def probe(sender: Client, receiver: Client) -> None:
    """A to-device message from ``sender`` to ``receiver``, and wait until it arrives."""
    watcher = await SyncWatcher(receiver).start()
    nonce = os.urandom(6).hex()
    body = {"messages": {receiver.user_id: {"*": {"nonce": nonce}}}}
    await sender.request("PUT", f"/sendToDevice/org.example.probe/{nonce}", body)

    def arrived(response: dict[str, Any]) -> bool:
        events = response.get("to_device", {}).get("events", [])
        return any(e.get("content", {}).get("nonce") == nonce for e in events)

    await watcher.until(arrived, f"{receiver.user_id} to get {sender.user_id}'s to-device probe")
