"""A user's presence as the node keeps it, and Synapse's rules: when a change is worth
telling, what the timers make of it, what an entry from another server must be (pure: no
I/O)."""

from __future__ import annotations

import dataclasses
from typing import Any

from federation.identifiers import domain_of
from homeserver.config.model import PresenceSettings
from homeserver.storage.presence import PresenceRow

STATES = ("online", "unavailable", "offline")
MAX_STATUS_MSG = 2048
#: How often remote servers are expected to send a user's presence again (Synapse's).
FEDERATION_TIMEOUT_MS = 30 * 60 * 1000


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


def timed_out(
    old: UserPresence, now: int, settings: PresenceSettings, *, local: bool, syncing: bool
) -> UserPresence | None:
    """Synapse's handle_timeout for one user (``local`` to this node, ``syncing`` now): the
    presence the timers give them, or None if they change nothing."""
    if old.state == "offline":
        return None
    new = dataclasses.replace(old)
    if not local:
        if now - old.last_federation_ts > FEDERATION_TIMEOUT_MS:
            new.state = "offline"
            return new
        return None
    if old.state == "online" and now - old.last_active_ts > settings.idle_timeout_ms:
        new.state = "unavailable"
    if not syncing and (
        now - max(old.last_user_sync_ts, old.last_active_ts) > settings.sync_online_timeout_ms
    ):
        new.state = "offline"
    return new


@dataclasses.dataclass(frozen=True)
class RemoteEntry:
    """One well-formed entry of an ``m.presence`` EDU."""

    user_id: str
    presence: str
    last_active_ago: int
    status_msg: str | None
    currently_active: bool

    def applied_to(self, old: UserPresence, now: int) -> UserPresence:
        """``old`` as this entry, heard of at ``now``, says it is."""
        return dataclasses.replace(
            old,
            state=self.presence,
            status_msg=self.status_msg or None,
            last_active_ts=now - self.last_active_ago,
            currently_active=self.currently_active and self.presence == "online",
            last_federation_ts=now,
        )


def read_remote_entry(origin: str, entry: Any) -> RemoteEntry | str:
    """An entry of an ``m.presence`` EDU from ``origin``, or why it is ignored."""
    if not isinstance(entry, dict):
        return "malformed"
    user_id, presence = entry.get("user_id"), entry.get("presence")
    ago, status_msg = entry.get("last_active_ago", 0), entry.get("status_msg")
    active = entry.get("currently_active", False)
    if not isinstance(user_id, str) or presence not in STATES:
        return "malformed"
    if not isinstance(ago, int) or isinstance(ago, bool) or ago < 0:
        return "malformed last_active_ago"
    if status_msg is not None and (
        not isinstance(status_msg, str) or len(status_msg) > MAX_STATUS_MSG
    ):
        return "malformed status_msg"
    try:
        if domain_of(user_id) != origin:
            return f"{user_id} is not a user of {origin}"
    except ValueError:
        return "malformed user ID"
    return RemoteEntry(user_id, presence, ago, status_msg, active is True)
