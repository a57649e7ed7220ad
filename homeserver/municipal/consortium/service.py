"""The consortia a node is in: the documents in force, who the members are, their keys.

Other features use it through ``node_api.provided("consortium.service")`` (or
``registry.provided`` while registering): :meth:`ConsortiumService.members`,
:meth:`~ConsortiumService.consortium`, :meth:`~ConsortiumService.documents` and
:meth:`~ConsortiumService.on_applied`.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from federation.canonical import encode_canonical_json
from homeserver.common.clock import Clock
from homeserver.municipal.consortium import rules, storage
from homeserver.municipal.consortium.document import Document

log = logging.getLogger(__name__)

#: ``callback(new, previous)``: a new version is in force (``previous``: None for a
#: consortium the node did not hold).  May be a coroutine function; must not block.
Applied = Callable[[Document, Document | None], Awaitable[None] | None]


async def store_if_valid(db: Any, obj: Any, now_ms: int, source: str) -> Document:
    """Check ``obj`` against the newest version the database holds for its id and store
    it; :class:`rules.Refused` (nothing stored) otherwise.  ``kairan consortium apply``
    and the running node both come here, so the database decides what is held."""
    doc_id = obj.get("id") if isinstance(obj, dict) else None
    async with db.write() as conn:
        held = None
        if isinstance(doc_id, str):
            text = await storage.get(conn, doc_id)
            held = None if text is None else rules.check_stored(json.loads(text))
        doc = rules.check(obj, now_ms=now_ms, held=held)
        text = encode_canonical_json(dict(doc.json)).decode("utf-8")
        if not await storage.insert(conn, doc.id, doc.version, text, now_ms, source):
            raise rules.Refused(f"version {doc.version} is held already")
    return doc


class ConsortiumService:
    def __init__(self, db: Any, clock: Clock, server_name: str, *, closed: bool) -> None:
        self.db = db
        self.clock = clock
        self.server_name = server_name
        #: ``federation.closed``: only this node and the members.
        self.closed = closed
        self._documents: dict[str, Document] = {}
        self._members: frozenset[str] = frozenset()
        self._pins: dict[str, dict[str, str]] = {}
        self._next_expiry: int | None = None
        self._callbacks: list[Applied] = []
        self._lock = asyncio.Lock()

    # ------------------------------------------------------------- what others ask

    def members(self) -> frozenset[str]:
        """Every member of every consortium in force (their union)."""
        self._expire()
        return self._members

    def consortium(self, consortium_id: str) -> Document | None:
        return self._documents.get(consortium_id)

    def documents(self) -> dict[str, Document]:
        """The version in force of each consortium held (expired ones included)."""
        return dict(self._documents)

    def on_applied(self, callback: Applied) -> None:
        """Call ``callback(new, previous)`` each time a new version comes into force."""
        self._callbacks.append(callback)

    def refusal(self, server: str) -> str | None:
        """Why ``server`` may not federate with this node (None: it may)."""
        if not self.closed or server == self.server_name or server in self.members():
            return None
        return "not a member of this node's consortia (federation.closed)"

    def pinned(self, server: str) -> Mapping[str, str] | None:
        """A member's pinned keys (this node's own keys are its own: never pinned)."""
        if server == self.server_name:
            return None
        self._expire()
        return self._pins.get(server)

    # ------------------------------------------------------------- applying

    async def load(self) -> None:
        """The versions in force, from the database (at start, and when polled)."""
        async with self.db.read() as conn:
            versions = await storage.latest_versions(conn)
        for doc_id, version in versions.items():
            held = self._documents.get(doc_id)
            if held is not None and held.version >= version:
                continue
            async with self.db.read() as conn:
                text = await storage.get(conn, doc_id, version)
            if text is not None:
                await self._install(rules.check_stored(json.loads(text)), "database")

    async def apply(self, obj: Any, source: str) -> Document:
        """Validate and store a document, and put it in force; :class:`rules.Refused`
        (nothing changes) otherwise."""
        async with self._lock:
            doc = await store_if_valid(self.db, obj, self.clock.now_ms(), source)
        await self._install(doc, source)
        return doc

    async def _install(self, doc: Document, source: str) -> None:
        async with self._lock:
            previous = self._documents.get(doc.id)
            if previous is not None and previous.version >= doc.version:
                return
            before = self._members
            self._documents[doc.id] = doc
            self._recompute()
        added, removed = sorted(self._members - before), sorted(before - self._members)
        log.info(
            "consortium %s version %d in force (from %s): %d members%s%s",
            doc.id, doc.version, source, len(doc.members),
            f", added {', '.join(added)}" if added else "",
            f", removed {', '.join(removed)}" if removed else "",
        )  # fmt: skip
        for callback in self._callbacks:
            try:
                result = callback(doc, previous)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("a consortium callback failed")

    def _recompute(self) -> None:
        now = self.clock.now_ms()
        self._members = rules.members_of(self._documents, now)
        self._pins = rules.pinned_keys(self._documents, now)
        pending = [d.valid_until_ts for d in self._documents.values() if d.valid_until_ts > now]
        self._next_expiry = min(pending) if pending else None

    def _expire(self) -> None:
        # Expired documents stop counting at once (fail closed), not at the next poll.
        if self._next_expiry is not None and self.clock.now_ms() >= self._next_expiry:
            expired = [
                d.id for d in self._documents.values() if d.valid_until_ts <= self._next_expiry
            ]
            log.warning("consortium documents expired: %s", ", ".join(expired))
            self._recompute()
