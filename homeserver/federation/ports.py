"""What the node's federation side needs from services in other packages (accounts, E2EE,
media...), as typing.Protocols.  The composition root (homeserver/node/wiring.py) hands
the implementations to the constructors.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from aiohttp import web

from homeserver.accounts.service import Requester
from homeserver.media.ports import MediaFile
from homeserver.media.thumbnail_sizes import Method
from homeserver.rooms.cache import RoomCache
from homeserver.rooms.summary import AclCheck
from homeserver.storage.accounts import User


class LocalUsers(Protocol):
    """Whose users are this server's (homeserver.accounts.service.AccountService)."""

    def is_local(self, user_id: str) -> bool: ...


class LocalKeys(Protocol):
    """Local users' keys and to-device inboxes (homeserver.e2ee.service.KeysService)."""

    async def query(self, who: Requester, body: dict[str, Any]) -> dict[str, Any]: ...

    async def claim(self, who: Requester, body: dict[str, Any]) -> dict[str, Any]: ...

    async def deliver(
        self, sender: str, event_type: str, messages: dict[str, dict[str, Any]]
    ) -> None: ...


class EduHandler(Protocol):
    """Handles one type of EDU from a server: (origin, content)."""

    async def __call__(self, origin: str, content: dict[str, Any], /) -> None: ...


class Typing(Protocol):
    """Who is typing where (homeserver.sync.typing.TypingService)."""

    def set_typing(
        self,
        room_id: str,
        user_id: str,
        typing: bool,
        timeout_ms: int = 30_000,
        *,
        local: bool = True,
    ) -> None: ...


class Receipts(Protocol):
    """Read receipts (homeserver.userdata.service.UserDataService)."""

    async def store_remote_receipt(
        self, room: RoomCache, user_id: str, event_id: str, thread_id: str | None
    ) -> None: ...


class UserLookup(Protocol):
    """Local accounts (homeserver.accounts.service.AccountService)."""

    async def get_user(self, user_id: str) -> User | None: ...


class Directory(Protocol):
    """Profiles and the public room directory (homeserver.rooms.directory.DirectoryService)."""

    async def get_profile(self, user_id: str) -> dict[str, Any]: ...

    async def public_rooms(self, search: str, limit: int, since: Any) -> dict[str, Any]: ...


class SpaceSummaries(Protocol):
    """Summaries of spaces for other servers (homeserver.rooms.summary.RoomSummaries)."""

    async def for_server(
        self, origin: str, room_id: str, suggested_only: bool, acl_denies: AclCheck
    ) -> dict[str, Any]: ...


class KeyQueries(Protocol):
    """Answers to other servers' /user/devices and /user/keys/* (e2ee_inbound.KeysReceiver)."""

    async def federation_user_devices(self, origin: str, user_id: str) -> dict[str, Any]: ...

    async def federation_user_keys(
        self, origin: str, action: str, body: dict[str, Any]
    ) -> dict[str, Any]: ...


class MediaForServers(Protocol):
    """Local media as other servers download it (media_serving.LocalMediaServer)."""

    async def serve(self, origin: str, media_id: str) -> web.StreamResponse: ...

    async def serve_thumbnail(
        self, origin: str, media_id: str, query: Mapping[str, str]
    ) -> web.StreamResponse: ...


class LocalMedia(Protocol):
    """This server's media (homeserver.media.service.MediaService)."""

    server_name: str

    async def download(self, server_name: str, media_id: str, *, timeout_ms: int) -> MediaFile: ...

    async def thumbnail(
        self,
        server_name: str,
        media_id: str,
        *,
        width: int,
        height: int,
        method: Method,
        timeout_ms: int,
    ) -> MediaFile: ...


class OpenIdUserInfo(Protocol):
    """OpenID tokens (homeserver.accounts.openid.OpenIdTokens)."""

    async def user_info(self, token: str) -> str | None: ...
