"""A fake remote homeserver for attacking a Kairan node over real HTTPS on loopback.

It has its own ed25519 key and server name (``127.0.0.1:<port>``), serves that key at
``/_matrix/key/v2/server`` from a tiny aiohttp TLS app (so the node under test fetches
and trusts it like any other server's), builds and signs PDUs with the engine's own
functions, and sends X-Matrix-signed requests to the node — well formed or not.  Every
request the node makes to it is recorded; everything but the key server answers 404,
unless a test installs a handler for the path (to be slow, silent or helpful).
"""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yarl
from aiohttp import web

from federation import events as engine_events
from federation.room_versions import RoomVersion
from federation.room_versions import get as get_room_version
from federation.signing import SigningKey, build_server_keys, generate_signing_key
from federation.xmatrix import authorization_header
from homeserver.node.tls import write_self_signed
from tests.homeserver.conftest import Node, free_port


@dataclass
class Answer:
    status: int
    body: Any


@dataclass
class JoinedRoom:
    """What the fake server knows of a room it joined on the node under test."""

    room_id: str
    version: RoomVersion
    #: (type, state_key) -> event ID, the state after our join
    state: dict[tuple[str, str], str]
    #: event ID -> PDU of every event we know
    events: dict[str, dict[str, Any]]
    #: our newest event (the room's forward extremity as far as we know)
    head: str
    depth: int
    user_id: str

    def auth_for(self, event_type: str, sender: str, state_key: str | None) -> list[str]:
        keys = [("m.room.power_levels", ""), ("m.room.member", sender)]
        if not self.version.room_id_is_create_hash:
            keys.append(("m.room.create", ""))
        if event_type == "m.room.member" and state_key is not None:
            keys += [("m.room.member", state_key), ("m.room.join_rules", "")]
        return list(dict.fromkeys(self.state[k] for k in keys if k in self.state))


@dataclass
class FakeServer:
    directory: Path
    key: SigningKey = field(default_factory=generate_signing_key)
    port: int = field(default_factory=free_port)
    #: (method, path) of every request the node made to us
    requests: list[tuple[str, str]] = field(default_factory=list)
    #: path prefix -> how to answer requests for it (instead of 404)
    handlers: dict[str, Callable[[web.Request], Awaitable[web.StreamResponse]]] = field(
        default_factory=dict
    )
    _runner: web.AppRunner | None = None
    _session: aiohttp.ClientSession | None = None

    @property
    def server_name(self) -> str:
        return f"127.0.0.1:{self.port}"

    def user(self, localpart: str) -> str:
        return f"@{localpart}:{self.server_name}"

    # ------------------------------------------------------------- serving

    async def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        cert, private = self.directory / "tls.crt", self.directory / "tls.key"
        write_self_signed("127.0.0.1", cert, private)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, private)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._serve)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port, ssl_context=context).start()
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=False))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> FakeServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((request.method, request.path))
        for prefix, handler in self.handlers.items():
            if request.path.startswith(prefix):
                return await handler(request)
        if request.path.startswith("/_matrix/key/v2/server"):
            valid_until = int(time.time() * 1000) + 24 * 3600 * 1000
            return web.json_response(build_server_keys(self.server_name, self.key, valid_until))
        return web.json_response({"errcode": "M_NOT_FOUND", "error": "fake server"}, status=404)

    # ------------------------------------------------------------- requests to the node

    async def request(
        self,
        node: Node,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        signed_content: Any = None,
    ) -> Answer:
        """An X-Matrix-signed request to ``node``.  ``raw`` sends those bytes as the body
        (the signature then covers ``signed_content``, e.g. what a lax parser would read)."""
        assert self._session is not None, "start() first"
        content = body if raw is None else signed_content
        header = authorization_header(
            self.server_name, self.key, node.server_name, method, path, content
        )
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        headers = {"Authorization": header}
        if data is not None:
            headers["Content-Type"] = "application/json"
        url = yarl.URL(node.base_url + path, encoded=True)
        async with self._session.request(method, url, data=data, headers=headers) as response:
            text = await response.read()
            try:
                parsed = json.loads(text) if text else None
            except ValueError:
                parsed = text
            return Answer(response.status, parsed)

    async def send_transaction(
        self,
        node: Node,
        txn_id: str,
        pdus: list[Any],
        edus: list[Any] | None = None,
    ) -> Answer:
        body = {
            "origin": self.server_name,
            "origin_server_ts": int(time.time() * 1000),
            "pdus": pdus,
            "edus": edus or [],
        }
        return await self.request(node, "PUT", f"/_matrix/federation/v1/send/{txn_id}", body)

    # ------------------------------------------------------------- events

    def build(
        self,
        room: JoinedRoom,
        event_type: str,
        content: dict[str, Any],
        *,
        sender: str | None = None,
        state_key: str | None = None,
        prev_events: list[str] | None = None,
        auth_events: list[str] | None = None,
        depth: int | None = None,
        advance: bool = True,
        origin_server_ts: int | None = None,
    ) -> tuple[str, dict[str, Any]]:
        """A signed event in ``room`` on top of our head; ``advance`` makes it the new head."""
        sender = sender or room.user_id
        event_id, pdu = engine_events.build_event(
            room.version,
            event_type=event_type,
            sender=sender,
            content=content,
            room_id=room.room_id,
            prev_events=prev_events if prev_events is not None else [room.head],
            auth_events=(
                auth_events
                if auth_events is not None
                else room.auth_for(event_type, sender, state_key)
            ),
            depth=depth if depth is not None else room.depth + 1,
            origin_server_ts=origin_server_ts or int(time.time() * 1000),
            server_name=self.server_name,
            key=self.key,
            state_key=state_key,
        )
        if advance:
            room.events[event_id] = pdu
            room.head = event_id
            room.depth = max(room.depth, pdu["depth"])
            if state_key is not None:
                room.state[(event_type, state_key)] = event_id
        return event_id, pdu

    def sign(self, room: JoinedRoom, pdu: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """Hash and sign an arbitrary (possibly hostile) event dict as this server."""
        signed = engine_events.sign_event(pdu, room.version, self.server_name, self.key)
        return engine_events.compute_event_id(signed, room.version), signed

    async def join(self, node: Node, room_id: str, localpart: str = "mallory") -> JoinedRoom:
        """make_join + send_join as ``@localpart:<us>``; the room as the node returned it."""
        user_id = self.user(localpart)
        made = await self.request(
            node,
            "GET",
            f"/_matrix/federation/v1/make_join/{room_id}/{user_id}?ver=10&ver=11&ver=12",
        )
        assert made.status == 200, made
        version = get_room_version(made.body["room_version"])
        template = dict(made.body["event"])
        template["origin_server_ts"] = int(time.time() * 1000)
        signed = engine_events.sign_event(template, version, self.server_name, self.key)
        event_id = engine_events.compute_event_id(signed, version)
        sent = await self.request(
            node, "PUT", f"/_matrix/federation/v2/send_join/{room_id}/{event_id}", signed
        )
        assert sent.status == 200, sent
        events = {
            engine_events.compute_event_id(p, version): p
            for p in [*sent.body["state"], *sent.body["auth_chain"]]
        }
        state = {
            (p["type"], p["state_key"]): e
            for e, p in events.items()
            if e in {engine_events.compute_event_id(s, version) for s in sent.body["state"]}
        }
        state[("m.room.member", user_id)] = event_id
        events[event_id] = signed
        return JoinedRoom(room_id, version, state, events, event_id, signed["depth"], user_id)
