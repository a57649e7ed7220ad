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
    ) -> None:
        self.server_name = server_name
        self._rooms = rooms
        self._accounts = accounts
        self._client = federation_client
        self._sender = sender
        self._provided = dict(provided or {})

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
        keys = [k for k in (("m.room.create", ""), ("m.room.power_levels", "")) if k in room.state]
        found = await self._rooms.get_events(room.state[k] for k in keys)
        auth_state = {k: found[room.state[k]].pdu for k in keys if room.state[k] in found}
        try:
            needed = engine_auth.required_power_for_event(event_type, True, auth_state)
        except AuthError:
            return []
        levels: list[tuple[float, str]] = []
        for user_id in room.joined():
            try:
                level = engine_auth.user_power_level(user_id, auth_state, room.version)
            except AuthError:
                continue
            if level >= needed:
                levels.append((-level, user_id))
        return [user_id for _, user_id in sorted(levels)]

    async def federation_request(
        self, destination: str, method: str, path: str, body: Any | None = None
    ) -> Any:
        """A signed request to another server (subject to the peer policy); its JSON."""
        if self._client is None:
            raise RuntimeError("federation is not available on this node")
        return await self._client.request(destination, method, path, body=body)
