"""Server name resolution (spec: Server-Server API, "Resolving server names").

Given a server name, find where to connect, what to send as the Host header and which name
the TLS certificate must carry: IP literals and explicit ports are used as they are, then
``/.well-known/matrix/server`` delegation, then SRV records (``_matrix-fed._tcp`` and the
deprecated ``_matrix._tcp``), then port 8448.  Configured overrides short-circuit it all,
for closed networks without DNS.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from federation.identifiers import InvalidIdentifier, split_server_name

log = logging.getLogger(__name__)

DEFAULT_PORT = 8448
WELL_KNOWN_CACHE_S = 24 * 3600
WELL_KNOWN_FAILURE_CACHE_S = 600


@dataclass(frozen=True)
class Destination:
    """Where and how to reach a server."""

    host: str  # to connect to (DNS name or IP, no brackets)
    port: int
    host_header: str
    tls_name: str  # the name the certificate must be valid for

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def _ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
        return True
    except ValueError:
        return False


#: Fetches ``https://<host>/.well-known/matrix/server`` and returns its body or None.
WellKnownFetcher = Callable[[str], Awaitable[bytes | None]]
#: Looks up SRV records: name -> [(target, port)] (sorted by priority/weight) or [].
SrvLookup = Callable[[str], Awaitable[list[tuple[str, int]]]]


async def dns_srv(name: str) -> list[tuple[str, int]]:
    """SRV lookup with dnspython; no records or any DNS failure gives []."""
    try:
        import dns.asyncresolver
        import dns.exception

        answer = await dns.asyncresolver.resolve(name, "SRV", lifetime=5)
    except Exception:  # NXDOMAIN, no answer, timeouts, no resolver configured...
        return []
    records = sorted(answer, key=lambda r: (r.priority, -r.weight))
    return [(str(r.target).rstrip("."), int(r.port)) for r in records if str(r.target) != "."]


class Resolver:
    def __init__(
        self,
        fetch_well_known: WellKnownFetcher,
        srv_lookup: SrvLookup = dns_srv,
        overrides: Mapping[str, str] | None = None,
    ) -> None:
        self._fetch = fetch_well_known
        self._srv = srv_lookup
        self._overrides = dict(overrides or {})
        self._well_known: dict[str, tuple[str | None, float]] = {}

    async def resolve(self, server_name: str) -> Destination:
        host, port = split_server_name(server_name)
        override = self._overrides.get(server_name)
        if override:
            target, _, target_port = override.rpartition(":")
            return Destination(target.strip("[]"), int(target_port), server_name, host.strip("[]"))
        bare = host.strip("[]")
        if _ip(bare):
            return Destination(bare, port or DEFAULT_PORT, server_name, bare)
        if port is not None:
            return Destination(host, port, server_name, host)
        delegated = await self._delegation(host)
        if delegated is not None:
            d_host, d_port = split_server_name(delegated)
            d_bare = d_host.strip("[]")
            if _ip(d_bare):
                return Destination(d_bare, d_port or DEFAULT_PORT, delegated, d_bare)
            if d_port is not None:
                return Destination(d_host, d_port, delegated, d_host)
            for prefix in ("_matrix-fed._tcp.", "_matrix._tcp."):
                records = await self._srv(prefix + d_host)
                if records:
                    target, srv_port = records[0]
                    return Destination(target, srv_port, d_host, d_host)
            return Destination(d_host, DEFAULT_PORT, d_host, d_host)
        for prefix in ("_matrix-fed._tcp.", "_matrix._tcp."):
            records = await self._srv(prefix + host)
            if records:
                target, srv_port = records[0]
                return Destination(target, srv_port, host, host)
        return Destination(host, DEFAULT_PORT, host, host)

    async def _delegation(self, host: str) -> str | None:
        cached = self._well_known.get(host)
        now = time.monotonic()
        if cached is not None and cached[1] > now:
            return cached[0]
        delegated: str | None = None
        body = await self._fetch(host)
        if body is not None:
            try:
                value = json.loads(body).get("m.server")
                if isinstance(value, str):
                    split_server_name(value)
                    delegated = value
            except (ValueError, AttributeError, InvalidIdentifier):
                log.info("ignoring invalid .well-known/matrix/server of %s", host)
        ttl = WELL_KNOWN_CACHE_S if delegated else WELL_KNOWN_FAILURE_CACHE_S
        self._well_known[host] = (delegated, now + ttl)
        return delegated
