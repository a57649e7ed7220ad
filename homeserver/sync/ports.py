"""What sync needs from services in other packages, as typing.Protocols (the composition
root, homeserver/node/wiring.py, hands it the implementations)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from homeserver.accounts.service import Requester


class SyncExtension(Protocol):
    """Fills its own sections of a /sync response (to-device messages, device lists, keys,
    push rules): (requester, since position or None, upto position, the response, the IDs
    of the rooms the user is joined to)."""

    async def __call__(
        self,
        requester: Requester,
        since: int | None,
        upto: int,
        response: dict[str, Any],
        joined_rooms: Sequence[str],
        /,
    ) -> None: ...


class TypingListener(Protocol):
    """Told when a local user starts or stops typing (room ID, user ID, typing), to tell
    other servers (homeserver.federation.outbound.Outbound.on_typing)."""

    def __call__(self, room_id: str, user_id: str, typing: bool, /) -> None: ...
