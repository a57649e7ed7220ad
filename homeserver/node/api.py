"""What a feature may use of a running node (handed to its ``on_start`` callbacks).

A small, stable surface in the manner of Synapse's ModuleApi: features call these rather
than reaching into the services, so the services can change without breaking them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from federation import auth as engine_auth
from federation.client import FederationClient
from federation.errors import AuthError
from federation.sender import TransactionSender
from homeserver.accounts.service import AccountService
from homeserver.rooms.directory import DirectoryService
from homeserver.rooms.handler import RoomHandler
from homeserver.rooms.reader import joined_at_level
from homeserver.rooms.service import RoomService


class NodeApi:
    def __init__(
        self,
        server_name: str,
        rooms: RoomService,
        accounts: AccountService,
        federation_client: FederationClient | None,
        *,
        sender: TransactionSender | None = None,
        provided: Mapping[str, Any] | None = None,
        profiles: DirectoryService | None = None,
        handler: RoomHandler | None = None,
    ) -> None:
        self.server_name = server_name
        self._rooms = rooms
        self._accounts = accounts
        self._client = federation_client
        self._profiles = profiles
        self._sender = sender
        self._provided = dict(provided or {})
        self._handler = handler

    def provided(self, name: str) -> Any | None:
        """What a feature offered under ``name`` (``Registry.provide``), or None: how one
        feature uses another's service (``consortium.service``...) without importing it."""
        return self._provided.get(name)

    def retry_destination(self, destination: str) -> None:
        """Try what is queued for ``destination`` now rather than after its backoff: when
        the peer policy has just come to refuse it, the queued items are dropped (logged)
        at once instead of at the next retry."""
        if self._sender is not None:
            self._sender.retry(destination)

    def is_local_user(self, user_id: str) -> bool:
        return self._accounts.is_local(user_id)

    async def user_exists(self, user_id: str) -> bool:
        user = await self._accounts.get_user(user_id)
        return user is not None and not user.deactivated

    async def set_managed_profile_fields(self, user_id: str, values: Mapping[str, Any]) -> None:
        """Set (None: delete) profile fields of a local user that the feature manages
        (``Registry.add_managed_profile_fields``): users cannot change these themselves."""
        if self._profiles is None:
            raise RuntimeError("profiles are not available here")
        await self._profiles.set_managed_fields(user_id, values)

    async def server_admins(self) -> list[str]:
        """The node's active server admins, the oldest account first."""
        return await self._accounts.server_admins()

    async def create_room(self, creator: str, body: dict[str, Any]) -> str:
        """Create a room as a local user, as ``/createRoom`` with ``body`` would (checked
        the same way, policies included); its room ID."""
        if self._handler is None:
            raise RuntimeError("rooms cannot be created through this NodeApi")
        room_id, _alias = await self._handler.create_room(creator, body)
        return room_id

    async def send_event(
        self,
        room_id: str,
        sender: str,
        event_type: str,
        content: dict[str, Any],
        *,
        state_key: str | None = None,
    ) -> str:
        """Send an event as a local user (checked by the auth rules and the policies like
        any other); its event ID."""
        return await self._rooms.send(room_id, sender, event_type, content, state_key=state_key)

    async def room_state(self, room_id: str) -> dict[tuple[str, str], Mapping[str, Any]]:
        """The room's current state: (type, state_key) -> content; empty for unknown rooms."""
        if await self._rooms.room(room_id) is None:
            return {}
        events = await self._rooms.current_state_events(room_id)
        return {
            (e.type, e.state_key or ""): e.pdu.get("content", {})
            for e in events
            if e.state_key is not None
        }

    async def state_content(
        self, room_id: str, event_type: str, state_key: str = ""
    ) -> Mapping[str, Any] | None:
        """One event of the room's current state (its content), or None when the room is
        unknown or has no such state (cached: cheap enough for an event policy)."""
        room = await self._rooms.room(room_id)
        if room is None or (event_type, state_key) not in room.state:
            return None
        return await self._rooms.state_content(room, event_type, state_key)

    async def rooms_with_state(self, event_type: str) -> list[str]:
        """The rooms this node knows whose current state has an event of ``event_type``."""
        return await self._rooms.reader.rooms_with_state(event_type)

    async def joined_with_power(self, room_id: str, event_type: str) -> list[str]:
        """The room's joined users (any server) whose power lets them send a state event
        of ``event_type``, highest power first, then by user ID; empty for unknown rooms."""
        room = await self._rooms.room(room_id)
        if room is None:
            return []
        auth_state = await self._rooms.reader.power_state(room)
        try:
            needed = engine_auth.required_power_for_event(event_type, True, auth_state)
        except AuthError:
            return []
        return joined_at_level(room, auth_state, needed)

    async def federation_request(
        self,
        destination: str,
        method: str,
        path: str,
        body: Any | None = None,
        *,
        timeout_s: float | None = None,
        max_bytes: int | None = None,
    ) -> Any:
        """A signed request to another server (subject to the peer policy); its JSON.
        ``timeout_s`` bounds the whole request, ``max_bytes`` the response's size (a
        larger one raises ``federation.client.RemoteError``)."""
        if self._client is None:
            raise RuntimeError("federation is not available on this node")
        if max_bytes is None:
            return await self._client.request(
                destination, method, path, body=body, timeout_s=timeout_s
            )
        return await self._client.request(
            destination, method, path, body=body, timeout_s=timeout_s, max_bytes=max_bytes
        )
