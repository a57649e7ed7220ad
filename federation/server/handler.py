"""What the node does for each federation request: the Protocol the node implements
(``homeserver.federation.handler``) and the routes call."""

from __future__ import annotations

from typing import Any, Protocol

from aiohttp import web


class FederationHandler(Protocol):
    """What the node does for each federation request.  ``origin`` is authenticated."""

    async def on_transaction(
        self, origin: str, txn_id: str, body: dict[str, Any]
    ) -> dict[str, Any]: ...
    async def on_make_membership(
        self, origin: str, membership: str, room_id: str, user_id: str, versions: list[str]
    ) -> dict[str, Any]: ...
    async def on_send_membership(
        self,
        origin: str,
        membership: str,
        room_id: str,
        event_id: str,
        pdu: Any,
        omit_members: bool,
    ) -> dict[str, Any]: ...
    async def on_invite(
        self, origin: str, room_id: str, event_id: str, body: dict[str, Any]
    ) -> dict[str, Any]: ...
    async def on_get_event(self, origin: str, event_id: str) -> dict[str, Any]: ...
    async def on_state(
        self, origin: str, room_id: str, event_id: str, ids_only: bool
    ) -> dict[str, Any]: ...
    async def on_event_auth(self, origin: str, room_id: str, event_id: str) -> dict[str, Any]: ...
    async def on_backfill(
        self, origin: str, room_id: str, event_ids: list[str], limit: int
    ) -> dict[str, Any]: ...
    async def on_get_missing_events(
        self, origin: str, room_id: str, body: dict[str, Any]
    ) -> dict[str, Any]: ...
    async def on_query(
        self, origin: str, query_type: str, args: dict[str, str]
    ) -> dict[str, Any]: ...
    async def on_user_devices(self, origin: str, user_id: str) -> dict[str, Any]: ...
    async def on_user_keys(
        self, origin: str, action: str, body: dict[str, Any]
    ) -> dict[str, Any]: ...
    async def on_public_rooms(
        self, origin: str, limit: int | None, since: str | None, search: str | None
    ) -> dict[str, Any]: ...
    async def on_hierarchy(
        self, origin: str, room_id: str, suggested_only: bool
    ) -> dict[str, Any]: ...
    async def on_timestamp_to_event(
        self, origin: str, room_id: str, ts: int, forward: bool
    ) -> dict[str, Any]: ...
    async def on_media(self, origin: str, media_id: str) -> web.StreamResponse: ...
    async def on_openid_userinfo(self, access_token: str) -> str | None:
        """The user an OpenID token names while it is valid (unauthenticated: no origin)."""
        ...

    async def on_media_thumbnail(
        self, origin: str, media_id: str, query: dict[str, str]
    ) -> web.StreamResponse: ...
