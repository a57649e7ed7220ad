"""Server name resolution in the order the spec gives (no network: fake lookups)."""

from __future__ import annotations

import json

import pytest

from federation.discovery import Destination, Resolver
from federation.identifiers import InvalidIdentifier


class Fakes:
    def __init__(
        self,
        well_known: dict[str, object] | None = None,
        srv: dict[str, list[tuple[str, int]]] | None = None,
    ) -> None:
        self.well_known = well_known or {}
        self.srv = srv or {}
        self.fetched: list[str] = []
        self.looked_up: list[str] = []

    async def fetch(self, host: str) -> bytes | None:
        self.fetched.append(host)
        body = self.well_known.get(host)
        if body is None:
            return None
        return body if isinstance(body, bytes) else json.dumps(body).encode()

    async def lookup(self, name: str) -> list[tuple[str, int]]:
        self.looked_up.append(name)
        return self.srv.get(name, [])


async def resolve(name: str, fakes: Fakes, overrides: dict[str, str] | None = None) -> Destination:
    return await Resolver(fakes.fetch, fakes.lookup, overrides).resolve(name)


async def test_ip_literals_and_explicit_ports_need_no_lookup() -> None:
    fakes = Fakes()
    assert await resolve("192.0.2.5", fakes) == Destination(
        "192.0.2.5", 8448, "192.0.2.5", "192.0.2.5"
    )
    assert await resolve("[2001:db8::1]:9000", fakes) == Destination(
        "2001:db8::1", 9000, "[2001:db8::1]:9000", "2001:db8::1"
    )
    assert await resolve("town.example.jp:8443", fakes) == Destination(
        "town.example.jp", 8443, "town.example.jp:8443", "town.example.jp"
    )
    assert fakes.fetched == [] and fakes.looked_up == []


async def test_well_known_delegation_variants() -> None:
    fakes = Fakes(
        well_known={
            "a.example": {"m.server": "matrix.a.example:443"},
            "b.example": {"m.server": "198.51.100.7"},
            "c.example": {"m.server": "matrix.c.example"},
            "d.example": {"m.server": "matrix.d.example"},
        },
        srv={"_matrix-fed._tcp.matrix.c.example": [("fed.c.example", 8449)]},
    )
    assert await resolve("a.example", fakes) == Destination(
        "matrix.a.example", 443, "matrix.a.example:443", "matrix.a.example"
    )
    assert await resolve("b.example", fakes) == Destination(
        "198.51.100.7", 8448, "198.51.100.7", "198.51.100.7"
    )
    # SRV of the delegated name: connect to the target, but Host and certificate are the delegated name.
    assert await resolve("c.example", fakes) == Destination(
        "fed.c.example", 8449, "matrix.c.example", "matrix.c.example"
    )
    assert await resolve("d.example", fakes) == Destination(
        "matrix.d.example", 8448, "matrix.d.example", "matrix.d.example"
    )


async def test_srv_order_then_default_port() -> None:
    fakes = Fakes(srv={"_matrix._tcp.old.example": [("legacy.old.example", 8000)]})
    # The deprecated _matrix._tcp record is used only after _matrix-fed._tcp.
    assert await resolve("old.example", fakes) == Destination(
        "legacy.old.example", 8000, "old.example", "old.example"
    )
    assert fakes.looked_up == ["_matrix-fed._tcp.old.example", "_matrix._tcp.old.example"]
    both = Fakes(srv={
        "_matrix-fed._tcp.new.example": [("fed.new.example", 8448)],
        "_matrix._tcp.new.example": [("legacy.new.example", 8000)],
    })  # fmt: skip
    assert (await resolve("new.example", both)).host == "fed.new.example"
    plain = Fakes()
    assert await resolve("plain.example", plain) == Destination(
        "plain.example", 8448, "plain.example", "plain.example"
    )


async def test_invalid_well_known_is_ignored_and_cached() -> None:
    fakes = Fakes(
        well_known={"bad.example": b"not json", "worse.example": {"m.server": "no spaces allowed"}}
    )
    assert (await resolve("bad.example", fakes)).host == "bad.example"
    resolver = Resolver(fakes.fetch, fakes.lookup)
    assert (await resolver.resolve("worse.example")).host == "worse.example"
    await resolver.resolve("worse.example")
    assert fakes.fetched.count("worse.example") == 1  # the failure is cached too


async def test_overrides_for_closed_networks() -> None:
    fakes = Fakes()
    got = await resolve("town-a.example.jp", fakes, {"town-a.example.jp": "10.0.0.5:8448"})
    assert got == Destination("10.0.0.5", 8448, "town-a.example.jp", "town-a.example.jp")
    assert fakes.fetched == []


async def test_invalid_server_name() -> None:
    with pytest.raises(InvalidIdentifier):
        await resolve("bad name!", Fakes())
