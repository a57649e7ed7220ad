"""A user's presence as the node keeps it, and Synapse's rule for when a change is worth
telling (pure: no I/O)."""

from __future__ import annotations

import dataclasses
from typing import Any

from homeserver.storage.presence import PresenceRow


@dataclasses.dataclass
class UserPresence:
    user_id: str
    state: str = "offline"
    status_msg: str | None = None
    last_active_ts: int = 0
    currently_active: bool = False
    last_user_sync_ts: int = 0
    #: Local user: when last sent to other servers; remote: when last heard of.
    last_federation_ts: int = 0

    def notable(self) -> tuple[str, str | None, bool]:
        return (self.state, self.status_msg, self.currently_active)

    def content(self, now: int) -> dict[str, Any]:
        """The ``m.presence`` content (without ``user_id``), as Synapse formats it."""
        content: dict[str, Any] = {"presence": self.state}
        if self.last_active_ts:
            content["last_active_ago"] = max(0, now - self.last_active_ts)
        if self.status_msg:
            content["status_msg"] = self.status_msg
        if self.state == "online":
            content["currently_active"] = self.currently_active
        return content


def from_row(row: PresenceRow) -> UserPresence:
    return UserPresence(
        row.user_id, row.state, row.status_msg, row.last_active_ts, row.currently_active,
        # Loaded after a restart: timers count from the row's last activity.
        last_user_sync_ts=row.last_active_ts, last_federation_ts=row.last_active_ts,
    )  # fmt: skip


def should_notify(old: UserPresence, new: UserPresence, granularity_ms: int) -> bool:
    """Synapse's should_notify: state, status message, currently_active, or a jump of
    last_active_ts that clients would not otherwise see."""
    if old.notable() != new.notable():
        return True
    jumped = new.last_active_ts - old.last_active_ts > granularity_ms
    if new.state == "online":
        return jumped and not new.currently_active
    return jumped
