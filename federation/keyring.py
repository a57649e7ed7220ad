"""Other servers' signing keys: fetched, verified, cached, and looked up by validity.

A key is fetched from its server's ``/_matrix/key/v2/server`` (verified: signed by that
server with the keys it lists) or, failing that, from the configured notaries'
``/_matrix/key/v2/query`` (each answer must carry the notary's signature too).  Keys are
trusted up to the lesser of their ``valid_until_ts`` and 7 days after fetching; old keys
up to their ``expired_ts``.

A server whose keys are pinned (:class:`~federation.ports.PinnedKeys`, e.g. a consortium
member's keys in the consortium document) is verified with those keys only, whatever its
valid-until times: nothing is fetched or cached for it, and a key it serves that is not
pinned verifies nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from typing import Any

from federation.client import FederationClient, FederationClientError
from federation.errors import FederationError
from federation.ports import Clock, KeyStore, PinnedKeys, StoredKey
from federation.signing import ServerKeys, parse_server_keys, verify_json

log = logging.getLogger(__name__)

#: Do not ask a server again for a key it did not have for this long.
NEGATIVE_CACHE_MS = 60_000


class KeyRing:
    def __init__(
        self,
        client: FederationClient,
        store: KeyStore,
        clock: Clock,
        notaries: Sequence[tuple[str, dict[str, str]]] = (),
        local: StoredKey | None = None,
        pins: PinnedKeys | None = None,
    ) -> None:
        self.client = client
        self.store = store
        self.clock = clock
        self.notaries = list(notaries)
        self.pins = pins
        self._memory: dict[tuple[str, str], StoredKey] = {}
        if local is not None:
            self._memory[(local.server_name, local.key_id)] = local
        self._misses: dict[tuple[str, str], int] = {}
        self._inflight: dict[str, asyncio.Future[None]] = {}
        #: server -> its last verified key document (for answering notary queries)
        self._documents: dict[str, dict[str, Any]] = {}

    def cached(self, server: str, key_id: str, valid_at_ts: int) -> str | None:
        """A key already in memory that is valid at ``valid_at_ts`` (no I/O)."""
        if self.pins is not None:
            pinned = self.pins.pinned(server)
            if pinned is not None:
                return pinned.get(key_id)
        found = self._memory.get((server, key_id))
        return found.public_key if found and found.valid_until_ts >= valid_at_ts else None

    async def get_key(self, server: str, key_id: str, valid_at_ts: int) -> str | None:
        """The public key of ``server``/``key_id`` valid at ``valid_at_ts``, fetching if needed."""
        hit = self.cached(server, key_id, valid_at_ts)
        if hit is not None or (self.pins is not None and self.pins.pinned(server) is not None):
            return hit
        stored = await self.store.get_server_key(server, key_id)
        if stored is not None:
            self._memory[(server, key_id)] = stored
            if stored.valid_until_ts >= valid_at_ts:
                return stored.public_key
        now = self.clock.now_ms()
        if now - self._misses.get((server, key_id), -NEGATIVE_CACHE_MS) < NEGATIVE_CACHE_MS:
            return None
        await self._fetch(server, [key_id], valid_at_ts)
        hit = self.cached(server, key_id, valid_at_ts)
        if hit is None:
            self._misses[(server, key_id)] = now
        return hit

    async def prefetch(self, wanted: Iterable[tuple[str, str, int]]) -> None:
        """Fetch, concurrently per server, every key not yet cached."""
        by_server: dict[str, list[tuple[str, int]]] = {}
        for server, key_id, ts in wanted:
            if self.cached(server, key_id, ts) is None:
                by_server.setdefault(server, []).append((key_id, ts))
        await asyncio.gather(
            *(
                self.get_key(server, items[0][0], max(t for _, t in items))
                for server, items in by_server.items()
            )
        )

    async def _fetch(self, server: str, key_ids: list[str], min_valid_ts: int) -> None:
        # One fetch per server at a time; concurrent callers wait for it.
        running = self._inflight.get(server)
        if running is not None:
            await asyncio.shield(running)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._inflight[server] = future
        try:
            keys = await self._fetch_direct(server)
            if not any((server, k) in {(s.server_name, s.key_id) for s in keys} for k in key_ids):
                keys += await self._fetch_from_notaries(server, key_ids, min_valid_ts)
            if keys:
                await self.store.store_server_keys(keys)
                for key in keys:
                    self._memory[(key.server_name, key.key_id)] = key
        finally:
            del self._inflight[server]
            future.set_result(None)

    async def fetch_document(self, server: str) -> dict[str, Any] | None:
        """``server``'s own verified key document, still valid, fetched if needed."""
        doc = self._documents.get(server)
        if doc is None or doc.get("valid_until_ts", 0) < self.clock.now_ms():
            await self._fetch_direct(server)
            doc = self._documents.get(server)
        return doc

    def _stored(self, parsed: ServerKeys, fetched_at: int) -> list[StoredKey]:
        valid = parsed.effective_valid_until(fetched_at)
        keys = [StoredKey(parsed.server_name, k, v, valid) for k, v in parsed.verify_keys.items()]
        keys += [
            StoredKey(parsed.server_name, k, v, expired)
            for k, (v, expired) in parsed.old_verify_keys.items()
        ]
        return keys

    async def _fetch_direct(self, server: str) -> list[StoredKey]:
        now = self.clock.now_ms()
        try:
            doc = await self.client.get_unsigned(server, "/_matrix/key/v2/server")
            stored = self._stored(parse_server_keys(doc, server), now)
            self._documents[server] = doc
            return stored
        except (FederationClientError, FederationError) as e:
            log.info("could not fetch keys of %s directly: %s", server, e)
            return []

    async def _fetch_from_notaries(
        self, server: str, key_ids: list[str], min_valid_ts: int
    ) -> list[StoredKey]:
        now = self.clock.now_ms()
        for notary, notary_keys in self.notaries:
            try:
                body = await self.client.request(
                    notary,
                    "POST",
                    "/_matrix/key/v2/query",
                    body={
                        "server_keys": {
                            server: {k: {"minimum_valid_until_ts": min_valid_ts} for k in key_ids}
                        }
                    },
                )
                found: list[StoredKey] = []
                for doc in _list(body.get("server_keys") if isinstance(body, dict) else None):
                    if not isinstance(doc, dict) or doc.get("server_name") != server:
                        continue
                    for key_id, public in notary_keys.items():
                        verify_json(doc, notary, key_id, public)
                    found += self._stored(parse_server_keys(doc, server), now)
                if found:
                    return found
            except (FederationClientError, FederationError) as e:
                log.info("notary %s could not give keys of %s: %s", notary, server, e)
        return []


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
