"""What sliding sync needs from services of other packages, as typing.Protocols (the
composition root, homeserver/node/wiring.py, hands it the implementations)."""

from __future__ import annotations

from typing import Any, Protocol

from homeserver.accounts.requester import Requester


class DeviceKeys(Protocol):
    """The e2ee and to_device extensions' source (homeserver.e2ee.service.KeysService)."""

    async def to_device_page(
        self, who: Requester, since: int | None, upto: int, limit: int, /
    ) -> tuple[list[dict[str, Any]], int]: ...

    async def one_time_key_counts(self, who: Requester, /) -> tuple[dict[str, int], list[str]]: ...

    async def device_list_delta(
        self, user_id: str, after: int, upto: int, /
    ) -> tuple[list[str], list[str]]: ...
