"""How a node learns newer versions with no central host.

- ``kairan consortium apply`` stores a version in the node's database; the node reads
  what is new every ``poll_seconds`` (2 s) and puts it in force.
- A version that comes into force is pushed to the other members of its consortium
  (``PUT .../consortia/{id}``), which check it and push it on: an epidemic, done in a
  few round trips.
- Pull: every ``refresh_seconds`` (60 s, with jitter) the node asks a few members what
  versions they hold (``GET .../consortia``), and when a member contacts it (at most once
  per ``contact_seconds`` per member); it fetches a newer version, and the versions
  between when its admins changed.

Whatever arrives is checked (rules.check): who sent it does not matter, only the admins'
signatures, so a member cannot push anything the admins did not sign.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from typing import Any

from aiohttp import web

from federation.client import FederationClientError
from federation.xmatrix import parse_authorization
from homeserver.common.http import Handler
from homeserver.municipal.consortium import rules
from homeserver.municipal.consortium.document import Document
from homeserver.municipal.consortium.service import ConsortiumService

log = logging.getLogger(__name__)

PATH = "/_matrix/federation/unstable/jp.kairan/consortia"
#: Members asked at each periodic refresh.
PULL_FANOUT = 3
PUSH_CONCURRENCY = 8


class Gossip:
    def __init__(self, service: ConsortiumService, settings: Any) -> None:
        self.service = service
        self.poll_s = float(settings.get("poll_seconds", 2))
        self.refresh_s = float(settings.get("refresh_seconds", 60))
        self.contact_s = float(settings.get("contact_seconds", 30))
        #: Push new versions to the members (off: they learn by pulling only).
        self.push_enabled = bool(settings.get("push", True))
        self.node: Any = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._loops: list[asyncio.Task[None]] = []
        self._contacted: dict[str, float] = {}
        self._pulling: set[str] = set()
        if self.poll_s <= 0 or self.refresh_s <= 0:
            raise ValueError("poll_seconds and refresh_seconds must be positive")

    # ------------------------------------------------------------- lifecycle

    async def start(self, node: Any) -> None:
        self.node = node
        self.service.on_applied(self._applied)
        await self.service.load()
        self._loops = [
            asyncio.create_task(self._every(self.poll_s, self.service.load), name="consortium-poll"),
            asyncio.create_task(self._every(self.refresh_s, self.refresh, jitter=True),
                                name="consortium-refresh"),
        ]  # fmt: skip

    async def stop(self) -> None:
        for task in [*self._loops, *self._tasks]:
            task.cancel()
        await asyncio.gather(*self._loops, *self._tasks, return_exceptions=True)

    async def _every(self, seconds: float, action: Any, *, jitter: bool = False) -> None:
        while True:
            await asyncio.sleep(seconds * (random.uniform(0.5, 1.5) if jitter else 1.0))
            try:
                await action()
            except Exception:
                log.exception("consortium %s failed", getattr(action, "__name__", "task"))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------- push

    def _applied(self, doc: Document, previous: Document | None) -> None:
        if self.node is None:
            return
        if previous is not None:
            # A member removed: what is queued for it goes now (dropped and logged).
            for server in set(previous.members) - set(doc.members):
                if self.service.refusal(server) is not None:
                    self.node.retry_destination(server)
        if self.push_enabled:
            self._spawn(self.push(doc))

    async def push(self, doc: Document) -> None:
        targets = sorted(set(doc.members) - {self.service.server_name})
        limit = asyncio.Semaphore(PUSH_CONCURRENCY)

        async def one(server: str) -> None:
            async with limit:
                try:
                    await self.node.federation_request(
                        server, "PUT", f"{PATH}/{doc.id}", body=dict(doc.json)
                    )
                except FederationClientError as e:
                    log.info("could not push consortium %s to %s: %s", doc.id, server, e)

        await asyncio.gather(*(one(s) for s in targets))

    # ------------------------------------------------------------- pull

    async def refresh(self) -> None:
        """Ask a few members (at random) for what they hold."""
        members = sorted(self.service.members() - {self.service.server_name})
        for server in random.sample(members, min(PULL_FANOUT, len(members))):
            await self.pull(server)

    def contacted(self, origin: str) -> None:
        """``origin`` sent us a request: if it is a member not asked lately, ask it."""
        if self.node is None or origin not in self.service.members():
            return
        now = asyncio.get_running_loop().time()
        if now - self._contacted.get(origin, -self.contact_s) < self.contact_s:
            return
        self._contacted[origin] = now
        self._spawn(self.pull(origin))

    async def pull(self, server: str) -> None:
        """Apply what ``server`` holds that is newer than ours."""
        if server in self._pulling or server == self.service.server_name:
            return
        self._pulling.add(server)
        try:
            listing = await self.node.federation_request(server, "GET", PATH)
            held = listing.get("consortia") if isinstance(listing, dict) else None
            if not isinstance(held, dict):
                return
            for doc_id, version in held.items():
                ours = self.service.consortium(doc_id)
                if ours is not None and isinstance(version, int) and version > ours.version:
                    await self._catch_up(server, ours, version)
        except FederationClientError as e:
            log.info("could not ask %s for its consortia: %s", server, e)
        finally:
            self._pulling.discard(server)

    async def _catch_up(self, server: str, ours: Document, newest: int) -> None:
        path = f"{PATH}/{ours.id}"
        latest = await self.node.federation_request(server, "GET", path)
        try:
            await self.service.apply(latest, server)
            return
        except rules.Refused as e:
            if "apply the versions between" not in str(e):
                log.warning("consortium %s from %s refused: %s", ours.id, server, e)
                return
        # The admins changed in between: apply each version in turn.
        for version in range(ours.version + 1, newest + 1):
            doc = await self.node.federation_request(server, "GET", f"{path}?version={version}")
            try:
                await self.service.apply(doc, server)
            except rules.Refused as e:
                log.warning("consortium %s version %d from %s refused: %s",
                            ours.id, version, server, e)  # fmt: skip
                return

    # ------------------------------------------------------------- contact hint

    def middleware(self) -> Any:
        """Notes the origin named by federation requests (before anything is verified:
        it only triggers a pull, whose answer is checked on its own)."""

        @web.middleware
        async def consortium_contact(request: web.Request, handler: Handler) -> web.StreamResponse:
            header = request.headers.get("Authorization")
            if (
                header
                and request.path.startswith("/_matrix/federation/")
                and not (request.path.startswith(PATH))
            ):
                with contextlib.suppress(Exception):
                    self.contacted(parse_authorization(header).origin)
            return await handler(request)

        return consortium_contact
