"""What rooms need from services in other packages (federation, accounts), as
typing.Protocols.  Nothing here imports those packages: the composition root
(homeserver/node/wiring.py) hands the implementations to the constructors.

(What RoomService tells about new events, hooks, listeners and the outbox, is in
``hooks.py``.)
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from homeserver.rooms.cache import RoomCache
from homeserver.storage.accounts import User


class Accounts(Protocol):
    """Local accounts (homeserver.accounts.service.AccountService)."""

    def is_local(self, user_id: str) -> bool: ...

    async def get_user(self, user_id: str) -> User | None: ...


class RemoteTimestamps(Protocol):
    """Other servers' answers to ``timestamp_to_event``
    (homeserver.federation.timestamps.RemoteTimestamps)."""

    async def closest(self, room: RoomCache, ts: int, forward: bool) -> str | None:
        """The event another server in the room finds nearest ``ts``, once it is in this
        node's timeline of the room (fetched if need be); None when no server answered
        or the event could not be had."""
        ...


class RoomPushRules(Protocol):
    """Users' push rules (homeserver.push.rules.PushRulesService), for a room upgrade."""

    async def copy_room_rules(self, user_id: str, old_room_id: str, new_room_id: str) -> None:
        """Copy the user's rules naming the old room to the new one."""
        ...


class UserDirectoryFilter(Protocol):
    """Users kept out of the user directory (features: partner accounts...)."""

    async def hidden_users(self, searcher: str, user_ids: Collection[str]) -> Collection[str]:
        """Which of ``user_ids`` ``searcher``'s search must not return."""
        ...


class ProfileFields(Protocol):
    """Profile fields a feature adds to local users' profiles (namespaced keys, as the
    spec's extended profiles allow), which users may neither set nor remove."""

    #: The keys the feature owns: refused by the profile endpoints that change a profile.
    protected: frozenset[str]

    async def fields(self, user_id: str) -> Mapping[str, Any]:
        """The feature's fields of a local user's profile (empty: none)."""
        ...


class RemoteRooms(Protocol):
    """Joining, inviting and leaving across servers (homeserver.federation.joins.RemoteRooms)."""

    async def resolve_alias(self, alias: str) -> tuple[str, list[str]]:
        """The room ID of another server's alias, and servers to join it through."""
        ...

    async def join(
        self, user_id: str, room_id: str, servers: list[str], content: dict[str, Any]
    ) -> str:
        """Join a room through one of ``servers``; its room ID."""
        ...

    async def invite(self, room: RoomCache, event_id: str, pdu: dict[str, Any]) -> dict[str, Any]:
        """Have the invitee's server countersign an invite; the countersigned event."""
        ...

    async def reject_invite(self, user_id: str, room_id: str, invite_origin: str) -> None: ...


class RemoteKnocks(Protocol):
    """Knocking on a room this node is not in, through other servers."""

    async def knock(
        self, user_id: str, room_id: str, servers: list[str], content: dict[str, Any]
    ) -> None: ...


class Backfiller(Protocol):
    """Fetches older history of a room from other servers: (room, how many events) ->
    whether any arrived (homeserver.federation.joins.RemoteRooms.backfill)."""

    async def __call__(self, room: RoomCache, limit: int, /) -> bool: ...


@dataclass(frozen=True)
class RemoteHierarchy:
    """A room of a space as another server describes it (its ``/hierarchy`` answer)."""

    #: The room's summary (spec fields only, ``allowed_room_ids`` included).
    room: dict[str, Any]
    #: Its ``m.space.child`` events with a valid ``via``, stripped, in the spec's order.
    children_state: list[dict[str, Any]]
    #: Summaries of the children the answering server is in, by room ID.
    children: dict[str, dict[str, Any]]
    #: Children the answering server says this server cannot see.
    inaccessible: frozenset[str]


class RemoteDirectory(Protocol):
    """Other servers' public room lists (homeserver.federation.public_rooms)."""

    async def public_rooms(
        self, server: str, search: str, limit: int, since: str | None
    ) -> dict[str, Any]:
        """``server``'s answer to ``/publicRooms``, in the spec's shape (MatrixError when
        it cannot be had)."""
        ...


class RemoteSpaces(Protocol):
    """Spaces of rooms this node is not in (homeserver.federation.spaces.RemoteSpaces)."""

    async def hierarchy(
        self, room_id: str, via: Iterable[str], suggested_only: bool
    ) -> RemoteHierarchy | None:
        """The room as one of ``via`` describes it, or None when none answers well."""
        ...


class UserDirectorySource(Protocol):
    """More users for ``/user_directory/search`` (a feature's: the organisation directory's
    staff, here and on its peers).  Entries are ``{"user_id", "display_name"?,
    "avatar_url"?}``; the node's own matches come first, then these, without duplicates."""

    async def search_users(self, requester: str, term: str, limit: int) -> list[dict[str, Any]]: ...
