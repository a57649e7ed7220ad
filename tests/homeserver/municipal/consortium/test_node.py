"""The consortium feature on real nodes over HTTP (SQLite and PostgreSQL): apply, serve,
closed federation, pinned keys, removal, gossip."""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import pytest

from federation.client import RefusedDestination, RemoteError
from homeserver.config import ConfigError, load_config
from homeserver.municipal.consortium import document, rules
from homeserver.node.app import build_services
from homeserver.node.setup import init_node
from tests.homeserver.municipal.consortium.docs import ADMINS, key, next_version, sign_all
from tests.homeserver.municipal.consortium.nodes import (
    document_for,
    feature,
    held_version,
    kairan,
    running,
    service_of,
    until,
    use_database,
)

LISTING = "/_matrix/federation/unstable/jp.kairan/consortia"


async def test_apply_puts_a_document_in_force_and_serves_it(
    tmp_path: Path, db_url: str, db_url_b: str
) -> None:
    async with running(tmp_path, ("a", db_url, {"features": feature()}), ("b", db_url_b, {})) as (
        a,
        b,
    ):
        use_database(a, db_url)
        v1 = document_for([a, b])
        path = tmp_path / "kanto.json"
        path.write_text(json.dumps(v1, ensure_ascii=False), encoding="utf-8")
        code, out = await kairan("consortium", "apply", path, "--dir", a.directory)
        assert code == 0, out
        assert "consortium kanto version 1 applied" in out
        assert await until(lambda: held_version(a) == 1) < 10
        assert service_of(a).members() == {a.server_name, b.server_name}
        # Served to the members, signatures and all.
        served = await b.services.federation.client.request(
            a.server_name, "GET", LISTING + "/kanto"
        )
        assert served == v1
        listing = await b.services.federation.client.request(a.server_name, "GET", LISTING)
        assert listing == {"consortia": {"kanto": 1}}
        code, out = await kairan("consortium", "show", "--dir", a.directory)
        assert code == 0 and "version 1" in out and b.server_name in out
        # Again, or older: refused with one line, nothing changes.
        code, out = await kairan("consortium", "apply", path, "--dir", a.directory)
        assert (code, out.strip()) == (
            1,
            "Error: version 1 is not newer than version 1 held (the version held)",
        )
        v2 = next_version(v1, remove=(b.server_name,))
        path.write_text(json.dumps(v2), encoding="utf-8")
        assert (await kairan("consortium", "apply", path, "--dir", a.directory))[0] == 0
        await until(lambda: held_version(a) == 2)
        path.write_text(json.dumps(v1), encoding="utf-8")
        code, out = await kairan("consortium", "apply", path, "--dir", a.directory)
        assert code == 1 and "(a rollback)" in out
        # Tampered, short-signed, expired: refused over federation too; nothing changes.
        tampered = next_version(v2, add={"evil.example.jp": key("evil")})
        tampered["members"]["evil2.example.jp"] = tampered["members"]["evil.example.jp"]
        short = next_version(v2, add={"evil.example.jp": key("evil")}, signers=ADMINS[:1])
        expired = sign_all({**document.start_edit(v2, signed=True), "valid_until_ts": 1}, ADMINS)
        for bad, reason in (
            (tampered, "bad signature"), (short, "signed by 1 of the 2"), (expired, "expired at")
        ):  # fmt: skip
            with pytest.raises(RemoteError) as refused:
                await b.services.federation.client.request(
                    a.server_name, "PUT", LISTING + "/kanto", body=bad
                )
            assert refused.value.status == 400 and reason in refused.value.message
        assert held_version(a) == 2 and service_of(a).members() == {a.server_name}
        # The held version came from the command line, in the node's own table.
        code, out = await kairan("consortium", "show", "--dir", a.directory)
        assert "version 2" in out


async def test_closed_federation_keeps_to_the_members(
    tmp_path: Path, db_url: str, db_url_b: str, db_url_c: str, caplog: pytest.LogCaptureFixture
) -> None:
    closed = {"features": feature(closed=True)}
    async with running(
        tmp_path, ("a", db_url, closed), ("b", db_url_b, {}), ("c", db_url_c, {})
    ) as (a, b, c):
        # Closed with no document yet: nobody (never "everybody").
        with pytest.raises(RemoteError) as refused:
            await b.services.federation.client.request(a.server_name, "GET", LISTING)
        assert (refused.value.status, refused.value.errcode) == (403, "M_FORBIDDEN")
        v1 = document_for([a, b])
        await service_of(a).apply(v1, "test")
        # A non-member's correctly signed request: 403 before any work.
        with pytest.raises(RemoteError) as refused:
            await c.services.federation.client.request(a.server_name, "GET", LISTING)
        assert (refused.value.status, refused.value.errcode) == (403, "M_FORBIDDEN")
        assert c.server_name in refused.value.message
        with pytest.raises(RefusedDestination):
            await a.services.federation.client.request(c.server_name, "GET", LISTING)
        async with a.client() as ca, b.client() as cb, c.client() as cc:
            alice = await ca.register("alice")
            bob = await cb.register("bob")
            carol = await cc.register("carol")
            room = await alice.create_room(preset="private_chat")
            # A member's user: invited, joins (its events verified with the pinned key).
            await alice.invite(room, bob.user_id)
            await bob.ok("POST", f"/_matrix/client/v3/join/{room}", {})
            await alice.send(room, "members only")
            invite = await alice.request(
                "POST", f"/_matrix/client/v3/rooms/{room}/invite", {"user_id": carol.user_id}
            )
            assert (invite.status, invite.body["errcode"]) == (403, "M_FORBIDDEN")
            assert "federation.closed" in invite.body["error"]
            created = await alice.request(
                "POST", "/_matrix/client/v3/createRoom", {"invite": [carol.user_id]}
            )
            assert (created.status, created.body["errcode"]) == (403, "M_FORBIDDEN")
            assert c.server_name in created.body["error"]
            elsewhere = await carol.create_room(preset="public_chat")
            join = await alice.request(
                "POST", f"/_matrix/client/v3/join/{elsewhere}", {},
                params={"server_name": c.server_name},
            )  # fmt: skip
            assert (join.status, join.body["errcode"]) == (403, "M_FORBIDDEN")
            assert "federation.closed" in join.body["error"]
            # B removed: its requests refused from the moment A applies version 2.
            await service_of(a).apply(next_version(v1, remove=(b.server_name,)), "test")
            with pytest.raises(RemoteError) as refused:
                await b.services.federation.client.request(a.server_name, "GET", LISTING)
            assert refused.value.status == 403
            late = {"origin": b.server_name, "origin_server_ts": 1, "pdus": [], "edus": []}
            with pytest.raises(RemoteError) as refused:
                await b.services.federation.client.request(
                    a.server_name, "PUT", "/_matrix/federation/v1/send/late1", body=late
                )
            assert (refused.value.status, refused.value.errcode) == (403, "M_FORBIDDEN")
            # What A queues for B is dropped and logged, never sent.
            caplog.set_level(logging.WARNING, logger="federation.sender")
            await alice.send(room, "not for bob's server")
            sender = a.services.federation.sender
            await until(lambda: any("dropping" in r.message for r in caplog.records))
            assert await sender.store.pending(b.server_name, 50, 100) == []
            messages = await bob.ok(
                "GET", f"/_matrix/client/v3/rooms/{room}/messages", params={"dir": "b"}
            )
            bodies = [e["content"].get("body") for e in messages["chunk"]]
            assert "members only" in bodies and "not for bob's server" not in bodies


async def test_a_members_keys_are_the_pinned_ones(
    tmp_path: Path, db_url: str, db_url_b: str
) -> None:
    """B signs with its real key, which it serves at /_matrix/key/v2/server; the document
    pins another: refused, until a new version pins the real one (a key rotation)."""
    async with running(tmp_path, ("a", db_url, {"features": feature()}), ("b", db_url_b, {})) as (
        a,
        b,
    ):
        impostor = key("not_b")
        v1 = document_for([a], keys={b.server_name: impostor})
        await service_of(a).apply(v1, "test")
        served = await a.services.federation.client.get_unsigned(
            b.server_name, "/_matrix/key/v2/server"
        )
        assert b.services.signing_key.key_id in served["verify_keys"]
        with pytest.raises(RemoteError) as refused:
            await b.services.federation.client.request(a.server_name, "GET", LISTING)
        assert (refused.value.status, refused.value.errcode) == (401, "M_UNAUTHORIZED")
        rotated = next_version(v1, add={b.server_name: b.services.signing_key})
        await service_of(a).apply(rotated, "test")
        listing = await b.services.federation.client.request(a.server_name, "GET", LISTING)
        assert listing == {"consortia": {"kanto": 2}}


async def test_new_versions_reach_the_members_by_push(
    tmp_path: Path, db_url: str, db_url_b: str, db_url_c: str
) -> None:
    specs = [(n, u, {"features": feature(refresh_seconds=3600)}) for n, u in
             (("a", db_url), ("b", db_url_b), ("c", db_url_c))]  # fmt: skip
    async with running(tmp_path, *specs) as nodes:
        a = nodes[0]
        use_database(a, db_url)
        v1 = document_for(nodes)
        for node in nodes:
            await service_of(node).apply(v1, "test")
        path = tmp_path / "v2.json"
        path.write_text(json.dumps(next_version(v1, add={"d.example.jp": key("d")})), "utf-8")
        assert (await kairan("consortium", "apply", path, "--dir", a.directory))[0] == 0
        took = await until(lambda: all(held_version(n) == 2 for n in nodes))
        assert took < 10
        assert all("d.example.jp" in service_of(n).members() for n in nodes)


async def test_members_pull_newer_versions_and_the_versions_between(
    tmp_path: Path, db_url: str, db_url_b: str
) -> None:
    """No push: B asks A periodically; the admins changed in version 2, so B fetches
    version 2 before version 3."""
    settings = {"features": feature(push=False, refresh_seconds=0.3)}
    async with running(tmp_path, ("a", db_url, settings), ("b", db_url_b, settings)) as (a, b):
        v1 = document_for([a, b])
        for node in (a, b):
            await service_of(node).apply(v1, "test")
        newcomers = [key("new1"), key("new2")]
        v2 = next_version(v1, admins=newcomers)
        v3 = next_version(v2, signers=newcomers, add={"e.example.jp": key("e")})
        await service_of(a).apply(v2, "test")
        await service_of(a).apply(v3, "test")
        # Version 3 alone does not follow what B holds.
        with pytest.raises(rules.Refused, match="apply the versions between"):
            rules.check(v3, now_ms=1, held=service_of(b).consortium("kanto"))
        await until(lambda: held_version(b) == 3)
        assert "e.example.jp" in service_of(b).members()


async def test_closed_federation_without_the_feature_does_not_start(
    tmp_path: Path, db_url: str
) -> None:
    """Never "closed" meaning "open to all" (Synapse's empty whitelist once did)."""
    init_node("127.0.0.1:18999", tmp_path / "n")
    loaded = load_config(tmp_path / "n")
    config = dataclasses.replace(
        loaded,
        database=db_url,
        federation=dataclasses.replace(loaded.federation, closed=True),
    )
    with pytest.raises(ConfigError, match="federation.closed is true but no enabled feature"):
        await build_services(config, fast_passwords=True)
