"""GET /notifications: the events that notified a user, newest first, from the push
actions written when each event was persisted.

Read receipts move the push actions up to them out of the unread ones (what is left are
the unread counts) into ``read_push_actions``, kept 30 days, so the list holds read
notifications too; ``read`` is worked out from the user's receipts (public or private,
threaded or not), as Synapse does.
"""

from __future__ import annotations

from typing import Any

from homeserver.common.errors import invalid_param
from homeserver.rooms.history import HistoryService
from homeserver.storage import push as store

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000


class NotificationsService:
    def __init__(self, history: HistoryService) -> None:
        self.history = history
        self.db = history.rooms.db

    async def notifications(
        self, user_id: str, device_id: str, token: str | None, limit: int | None, only: str | None
    ) -> dict[str, Any]:
        before: int | None = None
        if token is not None:
            if not token.isascii() or not token.isdigit() or len(token) > 18:
                raise invalid_param("Invalid from token")
            before = int(token)
        count = DEFAULT_LIMIT if limit is None else min(limit, MAX_LIMIT)
        async with self.db.read() as conn:
            found = await store.notifications_before(
                conn, user_id, before, count, only == "highlight"
            )
            read = await store.read_upto(conn, user_id, sorted({n.room_id for n in found}))
        events = await self.history.rooms.get_events(n.event_id for n in found)
        shown = [n for n in found if n.event_id in events]
        serialized = await self.history.serialize(
            [events[n.event_id] for n in shown], (user_id, device_id), include_room_id=False
        )
        notifications = []
        for n, event in zip(shown, serialized, strict=True):
            upto = max(read.get((n.room_id, ""), 0), read.get((n.room_id, n.thread_id), 0))
            notifications.append(
                {
                    "room_id": n.room_id,
                    "event": event,
                    "actions": n.actions if n.actions is not None else ["notify"],
                    "read": n.stream_ordering <= upto,
                    "ts": n.ts,
                }
            )
        response: dict[str, Any] = {"notifications": notifications}
        if len(found) == count and found:
            response["next_token"] = str(found[-1].stream_ordering)
        return response
