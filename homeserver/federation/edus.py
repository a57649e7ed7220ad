"""EDUs received from other servers: typing, read receipts, and those other services
register (to-device messages, device lists...)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from federation.events import MAX_ID_BYTES
from federation.identifiers import domain_of
from homeserver.federation.ports import EduHandler, Receipts, Typing
from homeserver.rooms.cache import RoomCache
from homeserver.rooms.reader import RoomReader

log = logging.getLogger(__name__)


class EduReceiver:
    def __init__(
        self,
        rooms: RoomReader,
        typing: Typing,
        userdata: Receipts,
        acl_denies: Callable[[RoomCache, str], Awaitable[bool]],
        handlers: Mapping[str, EduHandler],
    ) -> None:
        self.rooms = rooms
        self.typing = typing
        self.userdata = userdata
        self.acl_denies = acl_denies
        #: Handlers of the other EDU types (to-device, device lists...), by type.
        self.handlers = dict(handlers)

    async def receive(self, origin: str, edu: Any) -> None:
        if not isinstance(edu, dict) or not isinstance(edu.get("content"), dict):
            log.info("ignored a malformed EDU from %s", origin)
            return
        edu_type, content = edu.get("edu_type"), edu["content"]
        if edu_type == "m.typing":
            reason = await self._typing_edu(origin, content)
            if reason:
                log.info("ignored m.typing EDU from %s: %s", origin, reason)
        elif edu_type == "m.receipt":
            await self._receipt_edu(origin, content)
        elif isinstance(edu_type, str) and edu_type in self.handlers:
            await self.handlers[edu_type](origin, content)

    async def _typing_edu(self, origin: str, content: dict[str, Any]) -> str | None:
        """Apply a typing EDU; the reason it was ignored, if it was."""
        room_id, user_id, typing = (
            content.get("room_id"),
            content.get("user_id"),
            content.get("typing"),
        )
        if (
            not isinstance(room_id, str)
            or not isinstance(user_id, str)
            or not isinstance(typing, bool)
        ):
            return "malformed"
        if domain_of(user_id) != origin:
            return f"{user_id} is not a user of {origin}"
        room = await self.rooms.room(room_id)
        if room is None or room.members.get(user_id) != "join":
            return f"{user_id} is not in room {room_id}"
        if await self.acl_denies(room, origin):
            return "denied by the server ACL"
        self.typing.set_typing(room_id, user_id, typing, 30_000, local=False)
        return None

    async def _receipt_edu(self, origin: str, content: dict[str, Any]) -> None:
        def ignored(why: str) -> None:
            log.info("ignored m.receipt EDU from %s: %s", origin, why)

        for room_id, by_type in content.items():
            room = await self.rooms.room(room_id) if isinstance(room_id, str) else None
            if room is None or not isinstance(by_type, dict):
                ignored(f"unknown room {room_id} or malformed receipts")
                continue
            if await self.acl_denies(room, origin):
                ignored(f"denied by the server ACL of {room_id}")
                continue
            for receipt_type, by_user in by_type.items():
                if receipt_type != "m.read" or not isinstance(by_user, dict):
                    continue
                for user_id, receipt in by_user.items():
                    if not isinstance(user_id, str) or domain_of(user_id) != origin:
                        ignored(f"{user_id} is not a user of {origin}")
                        continue
                    if room.members.get(user_id) != "join" or not isinstance(receipt, dict):
                        ignored(f"{user_id} is not in room {room_id} or malformed receipt")
                        continue
                    event_ids = receipt.get("event_ids")
                    raw_data = receipt.get("data")
                    data: dict[str, Any] = raw_data if isinstance(raw_data, dict) else {}
                    if (
                        isinstance(event_ids, list)
                        and event_ids
                        and isinstance(event_ids[0], str)
                        and event_ids[0].startswith("$")
                        and len(event_ids[0].encode("utf-8", "surrogatepass")) <= MAX_ID_BYTES
                    ):
                        thread = (
                            data.get("thread_id")
                            if isinstance(data.get("thread_id"), str)
                            else None
                        )
                        await self.userdata.store_remote_receipt(
                            room, user_id, event_ids[0], thread
                        )
                    else:
                        ignored(f"receipt of {user_id} names no valid event ID")
