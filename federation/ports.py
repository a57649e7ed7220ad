"""What the federation I/O code needs from the node, as typing.Protocols.

The federation package never imports homeserver/; the node implements these.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


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
