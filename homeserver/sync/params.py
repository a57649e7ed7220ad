"""What a /sync request asks for: where it starts (:class:`SyncToken`) and what it wants
(:class:`SyncFilter`); a pass of it over the node's data (:class:`SyncRequest`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from homeserver.accounts.service import Requester
from homeserver.common.errors import MatrixError

DEFAULT_TIMELINE_LIMIT = 10


@dataclass(frozen=True)
class SyncToken:
    position: int
    typing: int

    def __str__(self) -> str:
        return f"s{self.position}_{self.typing}"

    @classmethod
    def parse(cls, text: str) -> SyncToken:
        parts = text[1:].split("_") if text.startswith("s") else []
        # ASCII digits within int64: anything else would fail in int() or in the database.
        if len(parts) != 2 or not all(p.isascii() and p.isdigit() and len(p) <= 18 for p in parts):
            raise MatrixError(400, "M_INVALID_PARAM", f"Invalid since token {text!r}")
        return cls(int(parts[0]), int(parts[1]))


@dataclass(frozen=True)
class SyncFilter:
    timeline_limit: int = DEFAULT_TIMELINE_LIMIT
    timeline_types: list[str] | None = None
    timeline_not_types: list[str] | None = None
    lazy_load_members: bool = False
    include_leave: bool = False
    rooms: list[str] | None = None
    not_rooms: list[str] | None = None
    account_data: bool = True
    ephemeral: bool = True
    #: The ``presence`` section (a filter's ``presence.not_types: ["*"]`` turns it off).
    presence: bool = True
    #: Notification counts per thread (``unread_thread_notifications``).
    thread_counts: bool = False

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> SyncFilter:
        room = body.get("room") or {}
        timeline = room.get("timeline") or {}
        state = room.get("state") or {}
        limit = timeline.get("limit", DEFAULT_TIMELINE_LIMIT)
        return cls(
            timeline_limit=max(1, min(int(limit), 1000))
            if isinstance(limit, int)
            else DEFAULT_TIMELINE_LIMIT,
            timeline_types=timeline.get("types"),
            timeline_not_types=timeline.get("not_types"),
            lazy_load_members=bool(state.get("lazy_load_members")),
            include_leave=bool(room.get("include_leave")),
            rooms=room.get("rooms"),
            not_rooms=room.get("not_rooms"),
            account_data=(body.get("account_data") or {}).get("not_types") != ["*"],
            ephemeral=(room.get("ephemeral") or {}).get("not_types") != ["*"],
            presence=(body.get("presence") or {}).get("not_types") != ["*"],
            thread_counts=timeline.get("unread_thread_notifications") is True,
        )

    def wants_room(self, room_id: str) -> bool:
        """Whether the room is in ``rooms`` (when given) and not in ``not_rooms``."""
        if self.rooms is not None and room_id not in self.rooms:
            return False
        return not (self.not_rooms and room_id in self.not_rooms)


@dataclass(frozen=True)
class SyncRequest:
    """One pass of a /sync request: whose, since where (None: an initial sync), up to
    where, with which filter."""

    requester: Requester
    since: SyncToken | None
    upto: SyncToken
    sync_filter: SyncFilter
    full_state: bool

    @property
    def user_id(self) -> str:
        return self.requester.user_id

    @property
    def since_pos(self) -> int | None:
        return self.since.position if self.since else None
