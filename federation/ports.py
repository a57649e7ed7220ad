"""What the federation I/O code needs from the node, as typing.Protocols.

The federation package never imports homeserver/; the node implements these.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class StoredKey:
    server_name: str
    key_id: str
    public_key: str
    #: The key may verify events with origin_server_ts up to this time (ms).
    valid_until_ts: int


class KeyStore(Protocol):
    async def get_server_key(self, server_name: str, key_id: str) -> StoredKey | None: ...

    async def store_server_keys(self, keys: list[StoredKey]) -> None: ...


class Clock(Protocol):
    def now_ms(self) -> int: ...


@dataclass(frozen=True)
class QueuedItem:
    id: int
    kind: str  # "pdu" or "edu"
    payload: dict[str, Any]


class QueueStore(Protocol):
    """The persisted outbound queues, one per destination."""

    async def enqueue(
        self, destinations: list[str], kind: str, payload: dict[str, Any]
    ) -> None: ...

    async def pending(self, destination: str, max_pdus: int, max_edus: int) -> list[QueuedItem]: ...

    async def remove(self, destination: str, ids: list[int]) -> None: ...

    async def destinations(self) -> list[str]: ...


class PeerPolicy(Protocol):
    """Which servers this node federates with (the node's features decide).  Synchronous
    and cheap: asked for every request.  ``None`` allows; a string is the reason to refuse."""

    def inbound(self, origin: str) -> str | None:
        """An inbound request naming ``origin`` in its X-Matrix header, asked before the
        origin's key is fetched (a refusal costs nothing; an allowed origin's signature is
        then verified before any other work)."""

    def outbound(self, destination: str) -> str | None:
        """Before any request to ``destination`` (queued items for it are then dropped)."""


class PinnedKeys(Protocol):
    """Servers whose signing keys the node knows without asking anyone (the consortium
    document pins its members' keys).  Synchronous and cheap: asked for every key lookup."""

    def pinned(self, server: str) -> Mapping[str, str] | None:
        """``key_id -> public key`` for a pinned server: only these verify its requests and
        events, and nothing is fetched for it (no /_matrix/key/v2, no notary).  ``None``:
        not pinned (its keys are fetched as usual)."""
