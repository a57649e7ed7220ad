"""The outbound federation client: resolves server names, signs requests, guards addresses.

I/O module (aiohttp).  Every request is signed with X-Matrix.  Before connecting, the
destination's addresses are resolved and refused when private, loopback or link-local
unless ``allow_private_addresses`` (an SSRF guard: a room member must not make the node
probe the municipality's internal network).  TLS certificates are verified against the
system store plus an optional CA file; verification can be turned off for test networks.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import socket
import ssl
import urllib.parse
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
import yarl

from federation.discovery import Destination, Resolver, dns_srv
from federation.ports import PeerPolicy
from federation.signing import SigningKey
from federation.xmatrix import authorization_header

log = logging.getLogger(__name__)

MAX_RESPONSE_BYTES = 64 * 1024 * 1024
USER_AGENT = "Kairan"


class FederationClientError(Exception):
    """A request to another server failed."""


class UnreachableError(FederationClientError):
    """The destination could not be reached (DNS, connection, TLS, timeout)."""


class ForbiddenDestination(UnreachableError):
    """The destination resolves to an address the SSRF guard refuses."""


class RefusedDestination(ForbiddenDestination):
    """The node's peer policy refuses this destination: nothing is sent to it."""


class RemoteError(FederationClientError):
    """The destination answered with an HTTP error (its Matrix errcode if any)."""

    def __init__(self, status: int, errcode: str | None, message: str) -> None:
        super().__init__(f"{status} {errcode or ''} {message}".strip())
        self.status = status
        self.errcode = errcode
        self.message = message


def federation_path(version: str, endpoint: str, *segments: str) -> str:
    """``/_matrix/federation/<version>/<endpoint>/<segments...>`` with each ID percent-encoded."""
    quoted = "/".join(urllib.parse.quote(segment, safe="") for segment in segments)
    return f"/_matrix/federation/{version}/{endpoint}" + (f"/{quoted}" if quoted else "")


def is_private(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return bool(
        ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast
        or ip.is_reserved or ip.is_unspecified
    )  # fmt: skip


async def resolve(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to, in the resolver's order without repeats (an IP
    literal is its own); OSError when it cannot be resolved.  Callers that connect to what
    they checked (federation, push gateways, URL previews) decide which they may use."""
    try:
        ipaddress.ip_address(host)
        return [host]
    except ValueError:
        pass
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def make_ssl_context(verify: bool, ca_file: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if ca_file:
        context.load_verify_locations(cafile=ca_file)
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class FederationClient:
    def __init__(
        self,
        server_name: str,
        signing_key: SigningKey,
        *,
        verify_tls: bool = True,
        ca_file: str | None = None,
        allow_private_addresses: bool = False,
        overrides: Mapping[str, str] | None = None,
        timeout_s: float = 60.0,
        peer_policy: PeerPolicy | None = None,
    ) -> None:
        self.server_name = server_name
        self.peer_policy = peer_policy
        self.signing_key = signing_key
        self.allow_private = allow_private_addresses
        self._ssl = make_ssl_context(verify_tls, ca_file)
        if not verify_tls:
            log.warning("federation TLS certificate verification is OFF: use only on test networks")
        self._timeout = aiohttp.ClientTimeout(total=timeout_s, connect=15)
        self._session: aiohttp.ClientSession | None = None
        self.resolver = Resolver(self._fetch_well_known, dns_srv, overrides)

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(ssl=self._ssl, limit=200, limit_per_host=10)
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=self._timeout, headers={"User-Agent": USER_AGENT}
            )
        return self._session

    def check_destination(self, destination: str) -> None:
        """RefusedDestination unless the peer policy allows ``destination``."""
        if self.peer_policy is not None:
            reason = self.peer_policy.outbound(destination)
            if reason is not None:
                raise RefusedDestination(f"{destination}: {reason}")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _addresses(self, host: str, port: int) -> list[str]:
        try:
            candidates = await resolve(host, port)
        except OSError as e:
            raise UnreachableError(f"cannot resolve {host}: {e}") from e
        allowed = [a for a in candidates if self.allow_private or not is_private(a)]
        if not allowed:
            raise ForbiddenDestination(
                f"{host} resolves only to private or loopback addresses ({', '.join(candidates)});"
                " set federation.allow_private_addresses to allow them"
            )
        return allowed

    async def _fetch_well_known(self, host: str) -> bytes | None:
        try:
            addresses = await self._addresses(host, 443)
            url = f"https://{_bracket(addresses[0])}:443/.well-known/matrix/server"
            async with self._http().get(
                url, headers={"Host": host}, server_hostname=host, allow_redirects=False
            ) as response:
                if response.status != 200:
                    return None
                return await response.content.read(64 * 1024)
        except (aiohttp.ClientError, TimeoutError, UnreachableError, ssl.SSLError):
            return None

    async def request(
        self,
        destination: str,
        method: str,
        path: str,
        *,
        query: Mapping[str, str | list[str]] | None = None,
        body: Any | None = None,
        timeout_s: float | None = None,
        max_bytes: int = MAX_RESPONSE_BYTES,
    ) -> Any:
        """Send a signed request and return the parsed JSON response (a response over
        ``max_bytes`` is a RemoteError)."""
        self.check_destination(destination)
        target = await self.resolver.resolve(destination)
        uri = path
        if query:
            uri += "?" + urllib.parse.urlencode(query, doseq=True, quote_via=urllib.parse.quote)
        header = authorization_header(
            self.server_name, self.signing_key, destination, method, uri, body
        )
        return await self._send(target, method, uri, body, header, timeout_s, max_bytes)

    @contextlib.asynccontextmanager
    async def stream(
        self,
        destination: str,
        path: str,
        *,
        query: Mapping[str, str | list[str]] | None = None,
        timeout_s: float | None = None,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """A signed GET whose response (any status) the caller reads itself, e.g. media.

        Connection failures raise UnreachableError, also while the body is being read.
        """
        self.check_destination(destination)
        target = await self.resolver.resolve(destination)
        uri = path
        if query:
            uri += "?" + urllib.parse.urlencode(query, doseq=True, quote_via=urllib.parse.quote)
        header = authorization_header(self.server_name, self.signing_key, destination, "GET", uri)
        address = (await self._addresses(target.host, target.port))[0]
        url = yarl.URL(f"https://{_bracket(address)}:{target.port}{uri}", encoded=True)
        headers = {"Host": target.host_header, "Authorization": header}
        timeout = aiohttp.ClientTimeout(total=timeout_s) if timeout_s else None
        try:
            async with self._http().get(
                url,
                headers=headers,
                server_hostname=target.tls_name,
                allow_redirects=False,
                timeout=timeout,
            ) as response:
                yield response
        except (aiohttp.ClientError, TimeoutError, ssl.SSLError, OSError) as e:
            raise UnreachableError(f"{target.address}: {type(e).__name__}: {e}") from e

    @contextlib.asynccontextmanager
    async def stream_url(
        self, url: str, *, timeout_s: float | None = None
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """An unsigned GET of an https URL another server gave us (a media redirect), with
        the same address guard and TLS checks as federation requests; no further redirects."""
        parsed = yarl.URL(url)
        if parsed.scheme != "https" or not parsed.host or parsed.user or parsed.password:
            raise UnreachableError(f"refusing to fetch {url!r}: not a plain https URL")
        self.check_destination(parsed.host)
        port = parsed.port or 443
        address = (await self._addresses(parsed.host, port))[0]
        target = parsed.with_host(address.strip("[]")).with_port(port)
        host_header = parsed.host if parsed.port in (None, 443) else f"{parsed.host}:{port}"
        timeout = aiohttp.ClientTimeout(total=timeout_s) if timeout_s else None
        try:
            async with self._http().get(
                target,
                headers={"Host": host_header},
                server_hostname=parsed.host,
                allow_redirects=False,
                timeout=timeout,
            ) as response:
                yield response
        except (aiohttp.ClientError, TimeoutError, ssl.SSLError, OSError, ValueError) as e:
            raise UnreachableError(f"{parsed.host}: {type(e).__name__}: {e}") from e

    async def get_room_hierarchy(
        self, destination: str, room_id: str, suggested_only: bool, timeout_s: float | None = None
    ) -> Any:
        """``GET /_matrix/federation/v1/hierarchy/{roomId}``: a space and its children as
        ``destination`` sees them (the parsed JSON, unchecked)."""
        return await self.request(
            destination,
            "GET",
            federation_path("v1", "hierarchy", room_id),
            query={"suggested_only": "true" if suggested_only else "false"},
            timeout_s=timeout_s,
        )

    async def get_unsigned(self, destination: str, path: str) -> Any:
        """An unauthenticated GET (the key server endpoint)."""
        self.check_destination(destination)
        target = await self.resolver.resolve(destination)
        return await self._send(target, "GET", path, None, None, None)

    async def _send(
        self,
        target: Destination,
        method: str,
        uri: str,
        body: Any | None,
        authorization: str | None,
        timeout_s: float | None,
        max_bytes: int = MAX_RESPONSE_BYTES,
    ) -> Any:
        address = (await self._addresses(target.host, target.port))[0]
        # The URI goes out exactly as signed: no re-encoding by the HTTP library.
        url = yarl.URL(f"https://{_bracket(address)}:{target.port}{uri}", encoded=True)
        headers = {"Host": target.host_header}
        if authorization:
            headers["Authorization"] = authorization
        data = None
        if body is not None:
            data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
            headers["Content-Type"] = "application/json"
        timeout = aiohttp.ClientTimeout(total=timeout_s) if timeout_s else None
        try:
            async with self._http().request(
                method,
                url,
                data=data,
                headers=headers,
                server_hostname=target.tls_name,
                allow_redirects=False,
                timeout=timeout,
            ) as response:
                raw = await response.content.read(max_bytes + 1)
                if len(raw) > max_bytes:
                    raise RemoteError(response.status, None, "response too large")
                parsed = _parse(raw)
                if response.status >= 400:
                    errcode = parsed.get("errcode") if isinstance(parsed, dict) else None
                    message = parsed.get("error") if isinstance(parsed, dict) else None
                    raise RemoteError(
                        response.status,
                        errcode if isinstance(errcode, str) else None,
                        message if isinstance(message, str) else response.reason or "",
                    )
                if parsed is _INVALID:
                    raise RemoteError(response.status, None, "response is not JSON")
                return parsed
        except (aiohttp.ClientError, TimeoutError, ssl.SSLError, OSError) as e:
            raise UnreachableError(f"{target.address}: {type(e).__name__}: {e}") from e


_INVALID: Any = object()


def _parse(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else {}
    except (ValueError, UnicodeDecodeError, RecursionError):
        return _INVALID


def _bracket(address: str) -> str:
    return f"[{address}]" if ":" in address else address
