"""When, from which address and with which client (``User-Agent``) each device was last
seen: recorded at login and on its authenticated requests, as Synapse's ``client_ips``.

Writes stay cheap: what was last written for each device is kept in memory, and a request
writes only when its address or user agent differs from it, or when the time written is
:data:`GRANULARITY_MS` old (Synapse's ``LAST_SEEN_GRANULARITY``): a device that keeps
making requests from one place costs one small UPDATE every two minutes, not one per
request.  After a restart each device's first request writes once."""

from __future__ import annotations

from homeserver.accounts.checks import ClientInfo
from homeserver.accounts.requester import Requester
from homeserver.common.clock import Clock
from homeserver.storage import accounts as store
from homeserver.storage.database import Database

#: A device seen again within this long from the same address and client is not written.
GRANULARITY_MS = 120_000
#: User agents are kept to this many characters.
MAX_USER_AGENT = 512
#: Devices remembered (all forgotten past this: each then writes once more).
MAX_DEVICES = 100_000


def user_agent_of(client: ClientInfo) -> str | None:
    agent = client.user_agent
    return agent[:MAX_USER_AGENT] if agent else None


class LastSeen:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        #: (user ID, device ID) -> (address, user agent, time) last written.
        self._written: dict[tuple[str, str], tuple[str | None, str | None, int]] = {}

    def written(self, user_id: str, device_id: str, client: ClientInfo, ts: int) -> None:
        """Note what the caller wrote itself (a login's new or updated device row)."""
        if len(self._written) >= MAX_DEVICES:
            self._written.clear()
        self._written[(user_id, device_id)] = (client.ip, user_agent_of(client), ts)

    async def seen(self, requester: Requester, client: ClientInfo) -> bool:
        """Record an authenticated request of the device; whether that wrote anything."""
        key = (requester.user_id, requester.device_id)
        agent = user_agent_of(client)
        now = self.clock.now_ms()
        last = self._written.get(key)
        if (
            last is not None
            and last[:2] == (client.ip, agent)
            and 0 <= now - last[2] < GRANULARITY_MS
        ):
            return False
        self.written(requester.user_id, requester.device_id, client, now)
        async with self.db.write() as conn:
            await store.record_seen(conn, key[0], key[1], now, client.ip, agent)
        return True
