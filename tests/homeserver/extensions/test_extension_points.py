"""Every extension point, used by a small test feature (tests/homeserver/extensions/sample)
over HTTP on both databases: what a feature plugs in is asked where the core says it is."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect

from federation.client import RefusedDestination, RemoteError
from homeserver.config.listeners import FeatureSettings
from tests.homeserver.client import Client, User
from tests.homeserver.conftest import Node, running_node, running_nodes, start_node, stop_node
from tests.homeserver.extensions.sample.service import PENDING, SampleService

SAMPLE = "tests.homeserver.extensions.sample:register"
NOTES = "/_matrix/client/unstable/jp.kairan/sample/notes"


def sample_feature(**settings: Any) -> tuple[FeatureSettings, ...]:
    return (FeatureSettings(SAMPLE, {"blocked_words": ["禁止"], **settings}),)


def sample_of(node: Node) -> SampleService:
    """The sample feature's service (its policy object knows it)."""
    policy = node.services.extensions.event_policy.policies[0]
    service: SampleService = policy.service  # type: ignore[attr-defined]
    return service


@pytest.fixture
async def sample_node(tmp_path: Path, db_url: str) -> AsyncIterator[Node]:
    async with running_node(tmp_path / "node", db_url, features=sample_feature()) as node:
        yield node
    assert sample_of(node).stopped


async def login(client: Client, user: str, **body: Any) -> Any:
    return await client.request(
        "POST",
        "/_matrix/client/v3/login",
        {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": user},
         "password": "correct horse", **body},
    )  # fmt: skip


# ---------------------------------------------------------------------- event policy


async def test_event_policy_refuses_local_events_and_room_actions(sample_node: Node) -> None:
    async with sample_node.client() as client:
        alice = await client.register("alice")
        await client.register("noinvite1")
        nojoin = await client.register("nojoin1")
        room = await alice.create_room(preset="public_chat")
        refused = await alice.request(
            "PUT", f"/_matrix/client/v3/rooms/{room}/send/m.room.message/t1",
            {"msgtype": "m.text", "body": "これは禁止です"},
        )  # fmt: skip
        assert (refused.status, refused.body["errcode"]) == (403, "M_FORBIDDEN")
        assert "禁止" in refused.body["error"]
        # A state event goes the other way through the room service: refused as well.
        topic = await alice.request(
            "PUT", f"/_matrix/client/v3/rooms/{room}/state/m.room.topic/", {"topic": "x"}
        )
        assert topic.status == 200
        await alice.send(room, "普通のメッセージ")
        named = await alice.request(
            "POST", "/_matrix/client/v3/createRoom", {"name": "forbidden room"}
        )
        assert (named.status, named.body["errcode"]) == (403, "M_FORBIDDEN")
        invite = await alice.request(
            "POST", f"/_matrix/client/v3/rooms/{room}/invite",
            {"user_id": f"@noinvite1:{sample_node.server_name}"},
        )  # fmt: skip
        assert (invite.status, invite.body["errcode"]) == (403, "M_FORBIDDEN")
        join = await nojoin.request("POST", f"/_matrix/client/v3/join/{room}", {})
        assert (join.status, join.body["errcode"]) == (403, "M_FORBIDDEN")
        # Invited, the same user may join.
        await alice.invite(room, nojoin.user_id)
        await nojoin.join(room)
        messages = await alice.ok(
            "GET", f"/_matrix/client/v3/rooms/{room}/messages", params={"dir": "b"}
        )
        bodies = [e["content"].get("body") for e in messages["chunk"]]
        assert "普通のメッセージ" in bodies and not any("禁止" in str(b) for b in bodies)
    asked = sample_of(sample_node).asked
    assert ("check_event", "m.room.create", None) in asked
    assert ("check_event", "m.room.message", None) in asked


async def test_received_events_refused_by_the_policy_are_soft_failed(
    tmp_path: Path, db_url: str, db_url_b: str
) -> None:
    """B runs the feature: A's refused message is stored on B but never shown there."""
    async with running_nodes() as group:
        a = await group.start(tmp_path / "a", db_url, tls=True)
        b = await group.start(tmp_path / "b", db_url_b, tls=True, features=sample_feature())
        async with a.client() as ca, b.client() as cb:
            alice = await ca.register("alice")
            bob = await cb.register("bob")
            room = await alice.create_room(preset="public_chat")
            await bob.ok(
                "POST", f"/_matrix/client/v3/join/{room}", {}, params={"via": a.server_name}
            )
            bad = await alice.send(room, "禁止の話")
            good = await alice.send(room, "いい話")
            await _wait_for_body(bob, room, "いい話")
            seen = await _bodies(bob, room)
            assert "禁止の話" not in seen and "いい話" in seen
            stored = await b.services.rooms.get_event(bad)
            assert stored is not None and stored.soft_failed
            assert await b.services.rooms.get_event(good) is not None
            # A's own user sees it: the policy is B's, A has none.
            assert "禁止の話" in await _bodies(alice, room)
            # An invite from A for B's user the policy refuses: A's client gets B's refusal.
            await cb.register("noinvite2")
            invite = await alice.request(
                "POST", f"/_matrix/client/v3/rooms/{room}/invite",
                {"user_id": f"@noinvite2:{b.server_name}"},
            )  # fmt: skip
            assert invite.status == 403, invite


async def _bodies(user: User, room: str) -> list[str]:
    messages = await user.ok(
        "GET", f"/_matrix/client/v3/rooms/{room}/messages", params={"dir": "b", "limit": "50"}
    )
    return [str(e["content"].get("body")) for e in messages["chunk"]]


async def _wait_for_body(user: User, room: str, body: str) -> None:
    import asyncio

    for _ in range(200):
        if body in await _bodies(user, room):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{body} never arrived")


# ---------------------------------------------------------------------- peer policy


async def test_peer_policy_refuses_inbound_and_outbound(
    tmp_path: Path, db_url: str, db_url_b: str
) -> None:
    async with running_nodes() as group:
        a = await group.start(tmp_path / "a", db_url, tls=True)
        b = await group.start(
            tmp_path / "b", db_url_b, tls=True,
            features=sample_feature(blocked_servers=[a.server_name]),
        )  # fmt: skip
        ping = "/_matrix/federation/unstable/jp.kairan/sample/ping"
        # Inbound: A's correctly signed request is refused after X-Matrix, before any work.
        with pytest.raises(RemoteError) as refused:
            await a.services.federation.client.request(b.server_name, "GET", ping)
        assert (refused.value.status, refused.value.errcode) == (403, "M_FORBIDDEN")
        assert a.server_name in str(refused.value)
        # Outbound: B sends nothing to A.
        with pytest.raises(RefusedDestination):
            await b.services.federation.client.request(a.server_name, "GET", ping)
        # A user of B cannot join A's room: no make_join goes out.
        async with a.client() as ca, b.client() as cb:
            alice = await ca.register("alice")
            bob = await cb.register("bob")
            room = await alice.create_room(preset="public_chat")
            join = await bob.request(
                "POST", f"/_matrix/client/v3/join/{room}", {}, params={"via": a.server_name}
            )
            assert join.status == 403, join
        # Unblocked (as a consortium document applied at run time would), it works both ways.
        sample_of(b).blocked_servers.clear()
        answer = await a.services.federation.client.request(b.server_name, "GET", ping)
        assert answer == {"origin": a.server_name, "server": b.server_name}


async def test_queued_items_for_a_refused_destination_are_dropped(
    tmp_path: Path, db_url: str, db_url_b: str
) -> None:
    """A runs the feature and refuses B: what is queued for B goes, logged, not retried."""
    import asyncio

    async with running_nodes() as group:
        b = await group.start(tmp_path / "b", db_url_b, tls=True)
        a = await group.start(
            tmp_path / "a", db_url, tls=True,
            features=sample_feature(blocked_servers=[b.server_name]),
        )  # fmt: skip
        sender = a.services.federation.sender
        typing = {"room_id": "!x:y", "user_id": f"@a:{a.server_name}", "typing": True}
        await sender.send_edu("m.typing", typing, [b.server_name])
        for _ in range(200):
            if not await sender.store.pending(b.server_name, 50, 100):
                break
            await asyncio.sleep(0.05)
        assert await sender.store.pending(b.server_name, 50, 100) == []
        assert sender._queues[b.server_name].backoff_s == 0.0  # dropped, not retried


# ---------------------------------------------------------------------- hooks and sync


async def test_listeners_sync_extensions_and_routes(sample_node: Node) -> None:
    async with sample_node.client() as client:
        alice = await client.register("alice")
        bob = await client.register("bob")
        room = await alice.create_room()
        await alice.send(room, "hello")
        initial = await alice.sync()
        assert initial["jp.kairan.sample"] == {"joined": 1, "initial": True}
        later = await alice.sync(since=initial["next_batch"])
        assert later["jp.kairan.sample"]["initial"] is False
        # Client routes: authenticated, stored in the feature's own table.
        assert (await client.request("PUT", NOTES + "/memo", {"value": "x"})).status == 401
        await alice.ok("PUT", NOTES + "/memo", {"value": "回覧板"})
        assert await alice.ok("GET", NOTES + "/memo") == {"value": "回覧板"}
        missing = await bob.request("GET", NOTES + "/memo")
        assert (missing.status, missing.body["errcode"]) == (404, "M_NOT_FOUND")
        bad = await alice.request("PUT", NOTES + "/memo", {"value": 7})
        assert (bad.status, bad.body["errcode"]) == (400, "M_BAD_JSON")
        # Admin routes: admins only.
        stats = "/_kairan/admin/v1/sample/stats"
        denied = await alice.request("GET", stats)
        assert (denied.status, denied.body["errcode"]) == (403, "M_FORBIDDEN")
        await sample_node.services.accounts.set_admin(alice.user_id, True)
        sample_node.services.accounts._token_cache.clear()
        body = await alice.ok("GET", stats)
        assert body["notes"] == 1 and body["admin"] == alice.user_id
        assert body["events"]["m.room.message"] >= 1 and body["events"]["m.room.create"] >= 1
    # The feature's table was made by its own migration, recorded in its own version table.
    async with sample_node.services.db.read() as conn:
        tables = await conn.run_sync(lambda c: inspect(c).get_table_names())
    assert "sample_notes" in tables and "alembic_version_sample" in tables
    assert sample_of(sample_node).node.server_name == sample_node.server_name


async def test_federation_routes_need_x_matrix(sample_node: Node) -> None:
    async with sample_node.client() as client:
        unsigned = await client.request("GET", "/_matrix/federation/unstable/jp.kairan/sample/ping")
        assert (unsigned.status, unsigned.body["errcode"]) == (401, "M_UNAUTHORIZED")


# ---------------------------------------------------------------------- uploads


async def test_upload_filter_accepts_transforms_and_quarantines(sample_node: Node) -> None:
    async with sample_node.client() as client:
        alice = await client.register("alice")
        upload = "/_matrix/media/v3/upload"
        kept = await alice.ok(
            "POST", upload, data=b"\x89PNG not really", headers={"Content-Type": "image/png"}
        )
        changed = await alice.ok(
            "POST", upload, data=b"hello kairan", params={"filename": "a.txt"},
            headers={"Content-Type": "text/plain"},
        )  # fmt: skip
        refused = await alice.request(
            "POST", upload, data=b"xx QUARANTINE-ME xx", headers={"Content-Type": "text/plain"}
        )
        assert (refused.status, refused.body["errcode"]) == (403, "M_FORBIDDEN")
        assert "dangerous" in refused.body["error"]
        server, media_id = changed["content_uri"][len("mxc://") :].split("/")
        got = await alice.request("GET", f"/_matrix/client/v1/media/download/{server}/{media_id}")
        assert got.status == 200 and got.body == b"HELLO KAIRAN"
        assert "cleaned.txt" in got.headers["Content-Disposition"]
        server, media_id = kept["content_uri"][len("mxc://") :].split("/")
        same = await alice.request("GET", f"/_matrix/client/v1/media/download/{server}/{media_id}")
        assert same.body == b"\x89PNG not really"
        # With create + upload-to as well.
        made = await alice.ok("POST", "/_matrix/media/v1/create")
        server, media_id = made["content_uri"][len("mxc://") :].split("/")
        late = await alice.request(
            "PUT", f"/_matrix/media/v3/upload/{server}/{media_id}",
            data=b"QUARANTINE-ME", headers={"Content-Type": "application/octet-stream"},
        )  # fmt: skip
        assert late.status == 403
    quarantine = sample_node.services.config.media_path / "quarantine"
    records = sorted(quarantine.glob("*.json"))
    assert len(records) == 2
    assert b"QUARANTINE-ME" in records[0].with_suffix("").read_bytes()
    tmp = sample_node.services.config.media_path / "tmp"
    assert list(tmp.iterdir()) == []  # nothing left behind


# ---------------------------------------------------------------------- logins


async def test_login_checks_refuse_and_hold_devices(sample_node: Node) -> None:
    async with sample_node.client() as client:
        await client.register("alice")
        lost = await login(client, "alice", device_id="LOSTPHONE")
        assert (lost.status, lost.body["errcode"]) == (403, "M_FORBIDDEN")
        held = await login(client, "alice", initial_device_display_name="needs approval")
        assert held.status == 200
        token = held.body["access_token"]
        waiting = await client.request("GET", "/_matrix/client/v3/account/whoami", token=token)
        assert (waiting.status, waiting.body["errcode"]) == (403, PENDING)
        admin = await client.register("admin")
        await sample_node.services.accounts.set_admin(admin.user_id, True)
        sample_node.services.accounts._token_cache.clear()
        await admin.ok(
            "POST", "/_kairan/admin/v1/sample/approve",
            {"user_id": held.body["user_id"], "device_id": held.body["device_id"]},
        )  # fmt: skip
        approved = await client.request("GET", "/_matrix/client/v3/account/whoami", token=token)
        assert approved.status == 200
        # Held again (a phone reported lost): refused at once, with no new login.
        await admin.ok(
            "POST", "/_kairan/admin/v1/sample/hold",
            {"user_id": held.body["user_id"], "device_id": held.body["device_id"]},
        )  # fmt: skip
        again = await client.request("GET", "/_matrix/client/v3/sync", token=token)
        assert (again.status, again.body["errcode"]) == (403, PENDING)
    assert set(sample_of(sample_node).logins.zones) == {"default"}


# ---------------------------------------------------------------------- listeners and zones


async def test_listeners_per_zone_with_their_middleware_and_resources(
    tmp_path: Path, db_url: str
) -> None:
    """One node on two listeners: the internet zone gets the feature's middleware and
    serves no federation."""
    import asyncio

    from homeserver.config import WellKnown
    from homeserver.config.listeners import Listener
    from homeserver.node.app import serve
    from tests.homeserver.conftest import free_port

    node, runner = await start_node(tmp_path / "seed", db_url)
    await stop_node(node, runner)
    lan, internet = free_port(), free_port()
    config = dataclasses.replace(
        node.services.config,
        listeners=(
            Listener("127.0.0.1", lan),
            Listener("127.0.0.1", internet, zone="internet", resources=("client", "admin")),
        ),
        features=sample_feature(),
        well_known=WellKnown(server="matrix.example.org:443"),
    )
    config = dataclasses.replace(config, listener=config.listeners[0])
    stop = asyncio.Event()
    task = asyncio.create_task(serve(config, stop=stop))
    try:
        async with (
            Client(f"http://127.0.0.1:{lan}") as inside,
            Client(f"http://127.0.0.1:{internet}") as outside,
        ):
            for _ in range(200):
                try:
                    await outside.request("GET", "/_matrix/client/versions")
                    break
                except OSError:
                    await asyncio.sleep(0.05)
            versions = await outside.request("GET", "/_matrix/client/versions")
            assert versions.status == 200 and versions.headers["X-Kairan-Zone"] == "internet"
            inside_versions = await inside.request("GET", "/_matrix/client/versions")
            assert "X-Kairan-Zone" not in inside_versions.headers
            # The feature keeps the admin API off the internet; the listener serves no
            # federation there at all.
            admin = await outside.request("GET", "/_kairan/admin/v1/users")
            assert (admin.status, admin.body["errcode"]) == (403, "M_FORBIDDEN")
            keys = await outside.request("GET", "/_matrix/key/v2/server")
            assert (keys.status, keys.body["errcode"]) == (404, "M_UNRECOGNIZED")
            assert (await inside.request("GET", "/_matrix/key/v2/server")).status == 200
            # Delegation is served on the client listener too.
            delegation = await outside.ok("GET", "/.well-known/matrix/server")
            assert delegation == {"m.server": "matrix.example.org:443"}
            user = await outside.register("carol")
            assert (await user.request("GET", "/_matrix/client/v3/account/whoami")).status == 200
    finally:
        stop.set()
        await task


# ---------------------------------------------------------------------- user directory, profiles


async def test_user_directory_sources_and_managed_profile_fields(sample_node: Node) -> None:
    async with sample_node.client() as client:
        alice = await client.register("alice")
        await client.register("sanpuru")
        path = "/_matrix/client/v3/user_directory/search"
        found = await alice.ok("POST", path, {"search_term": "サンプル"})
        assert found["results"] == [
            {"user_id": "@staff:elsewhere.example", "display_name": "サンプル職員"}
        ]
        alone = await alice.ok("POST", path, {"search_term": "alice"})
        assert alone["results"] == [{"user_id": alice.user_id, "display_name": "alice"}]
        # A failing source is left out; the node's own users are still found.
        still = await alice.ok("POST", path, {"search_term": "boom"})
        assert still == {"results": [], "limited": False}
        assert (await alice.ok("POST", path, {"search_term": "sanpuru"}))["results"][0][
            "user_id"
        ] == f"@sanpuru:{sample_node.server_name}"
        # The sample manages a profile field: users may not set it, the node may.
        me = f"/_matrix/client/v3/profile/{alice.user_id}"
        refused = await alice.request("PUT", me + "/jp.kairan.sample", {"jp.kairan.sample": 1})
        assert (refused.status, refused.body["errcode"]) == (403, "M_FORBIDDEN")
        caps = await alice.ok("GET", "/_matrix/client/v3/capabilities")
        assert caps["capabilities"]["m.profile_fields"]["disallowed"] == ["jp.kairan.sample"]
        await sample_of(sample_node).node.set_managed_profile_fields(
            alice.user_id, {"jp.kairan.sample": {"set": "by the node"}}
        )
        assert (await alice.ok("GET", me))["jp.kairan.sample"] == {"set": "by the node"}
