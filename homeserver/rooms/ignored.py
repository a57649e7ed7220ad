"""Ignored users (the spec's "Ignoring Users" module): ``m.ignored_user_list``.

A user's ignore list lives in their global account data.  While a user ignores someone,
the timeline (``/sync``, ``/messages``, ``/context``, ``/event``) leaves out that someone's
events except state events (so that the room's name, members and the like look the same
to everyone), ``/sync`` leaves out their invites, and their events notify no one who
ignores them, as Synapse does.  A change takes effect for the next request; events missed
while someone was ignored are not sent later (the spec: a client that wants them syncs
afresh).

Lists are cached per user (a user without one shares the empty set); a write through the
account data API replaces the cached list.  A malformed list (``ignored_users`` not an
object) ignores no one, as Synapse reads it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from homeserver.storage import userdata as store
from homeserver.storage.database import Database
from homeserver.storage.events import StoredEvent

IGNORED_USER_LIST = "m.ignored_user_list"
MAX_CACHED = 200_000
NOBODY: frozenset[str] = frozenset()


def ignored_in(content: Mapping[str, Any] | None) -> frozenset[str]:
    """The user IDs an ``m.ignored_user_list`` content ignores."""
    users = (content or {}).get("ignored_users")
    if not isinstance(users, Mapping):
        return NOBODY
    found = frozenset(u for u in users if isinstance(u, str) and u.startswith("@"))
    return found or NOBODY


def hides(event: StoredEvent, ignored: frozenset[str]) -> bool:
    """Whether a timeline event is hidden from someone who ignores ``ignored``: every event
    of theirs but state events."""
    return event.state_key is None and event.sender in ignored


def invited_by(event: StoredEvent | None, user_id: str, ignored: frozenset[str]) -> bool:
    """Whether ``event`` is an invite of ``user_id`` by someone they ignore."""
    return (
        event is not None
        and event.type == "m.room.member"
        and event.state_key == user_id
        and event.sender in ignored
        and event.pdu.get("content", {}).get("membership") == "invite"
    )


class IgnoredUsers:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._lists: dict[str, frozenset[str]] = {}

    async def of(self, user_id: str) -> frozenset[str]:
        found = self._lists.get(user_id)
        if found is None:
            found = (await self.of_many([user_id]))[user_id]
        return found

    async def of_many(self, users: Iterable[str]) -> dict[str, frozenset[str]]:
        """Each user's ignore list (cached; the missing ones read in one query)."""
        wanted = set(users)
        found = {u: self._lists[u] for u in wanted if u in self._lists}
        missing = sorted(wanted - found.keys())
        if missing:
            async with self.db.read() as conn:
                stored = await store.global_account_data_of(conn, missing, IGNORED_USER_LIST)
            if len(self._lists) + len(missing) > MAX_CACHED:
                self._lists.clear()
            for user_id in missing:
                # A list written while this read ran is newer than what it read.
                found[user_id] = self._lists.setdefault(user_id, ignored_in(stored.get(user_id)))
        return found

    def changed(self, user_id: str, content: Mapping[str, Any]) -> None:
        """After the user's ``m.ignored_user_list`` was written (committed)."""
        self._lists[user_id] = ignored_in(content)
