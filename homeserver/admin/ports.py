"""What the admin operations need from services in other packages, as typing.Protocols
(the composition root, homeserver/node/wiring.py, hands them the implementations)."""

from __future__ import annotations

from typing import Any, Protocol

from homeserver.rooms.cache import RoomCache
from homeserver.storage.accounts import User
from homeserver.storage.events import StoredEvent


class Accounts(Protocol):
    """Local accounts (homeserver.accounts.service.AccountService)."""

    def is_local(self, user_id: str) -> bool: ...

    def check_new_password(self, password: str, *, too_long_errcode: str = "M_UNKNOWN") -> None: ...

    async def get_user(self, user_id: str) -> User | None: ...

    async def create_user(
        self,
        localpart: str,
        password: str | None,
        *,
        admin: bool = False,
        displayname: str | None = None,
    ) -> str: ...

    async def set_password(
        self, user_id: str, password: str, *, logout_devices: bool, keep_device: str | None
    ) -> None: ...

    async def set_admin(self, user_id: str, admin: bool) -> None: ...

    async def deactivate(self, user_id: str) -> None: ...

    async def delete_device(self, user_id: str, device_id: str) -> None: ...


class Rooms(Protocol):
    """Rooms' current state (homeserver.rooms.reader.RoomReader)."""

    async def room(self, room_id: str) -> RoomCache | None: ...

    async def state_content(
        self, room: RoomCache, event_type: str, state_key: str = ""
    ) -> dict[str, Any]: ...

    async def current_state_events(self, room_id: str) -> list[StoredEvent]: ...


class Memberships(Protocol):
    """Leaving rooms and setting their state as a user would
    (homeserver.rooms.handler.RoomHandler)."""

    async def leave(self, user_id: str, room_id: str, reason: str | None = None) -> None: ...

    async def send_state(
        self, user_id: str, room_id: str, event_type: str, state_key: str, content: Any
    ) -> str: ...


class Profiles(Protocol):
    """Users' profiles (homeserver.rooms.directory.DirectoryService)."""

    async def set_profile_field(self, user_id: str, field: str, value: Any) -> None: ...


class RemoteMediaCache(Protocol):
    """The cache of other servers' media (homeserver.media.service.MediaService)."""

    async def purge_remote_cache(self, before_ts: int) -> int: ...


class SyncWaiters(Protocol):
    """How many /sync requests wait for news (homeserver.common.notifier.Notifier)."""

    @property
    def waiting(self) -> int: ...
