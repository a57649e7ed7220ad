"""The node's answers to other servers (implements federation.server.FederationHandler).

Memberships and invites are answered by ``memberships.py``, history by ``serving.py``,
EDUs by ``edus.py``, key queries by ``e2ee_inbound.py``; this class routes to them.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web

from federation import room_versions
from federation.identifiers import domain_of
from federation.sender import TransactionSender
from homeserver.common.clock import Clock
from homeserver.common.errors import MatrixError, not_found
from homeserver.federation.access import RoomAccess, servers_in_room
from homeserver.federation.edus import EduReceiver
from homeserver.federation.joining import JoinsUnderway
from homeserver.federation.memberships import MembershipHandler
from homeserver.federation.pipeline import EventPipeline
from homeserver.federation.ports import (
    Directory,
    KeyQueries,
    MediaForServers,
    OpenIdUserInfo,
    SpaceSummaries,
)
from homeserver.federation.serving import HistoryServer
from homeserver.federation.verify import event_id_or_none
from homeserver.rooms.cache import RoomCache
from homeserver.rooms.reader import RoomReader
from homeserver.rooms.timestamps import candidates as timestamp_candidates
from homeserver.storage import federation as federation_store
from homeserver.storage import rooms as room_store

log = logging.getLogger(__name__)


class NodeFederationHandler:
    def __init__(
        self,
        rooms: RoomReader,
        server_name: str,
        clock: Clock,
        *,
        access: RoomAccess,
        pipeline: EventPipeline,
        sender: TransactionSender,
        memberships: MembershipHandler,
        edus: EduReceiver,
        history: HistoryServer,
        directory: Directory,
        summaries: SpaceSummaries,
        keys: KeyQueries,
        media: MediaForServers,
        openid: OpenIdUserInfo,
        joins: JoinsUnderway,
    ) -> None:
        self.rooms = rooms
        self.joins = joins
        self.server_name = server_name
        self.clock = clock
        self.db = rooms.db
        self.access = access
        self.pipeline = pipeline
        self.sender = sender
        self.memberships = memberships
        self.edus = edus
        self.history = history
        self.directory = directory
        self.summaries = summaries
        self.keys = keys
        self.media = media
        self.openid = openid

    # ------------------------------------------------------------- transactions

    async def on_transaction(
        self, origin: str, txn_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        self.sender.destination_is_up(origin)
        async with self.db.read() as conn:
            previous = await federation_store.get_txn_response(conn, origin, txn_id)
        if previous is not None:
            return previous
        results: dict[str, Any] = {}
        by_room: dict[str, tuple[RoomCache, list[dict[str, Any]]]] = {}
        for pdu in body.get("pdus", []):
            room, event_id, error = await self._precheck_pdu(origin, pdu)
            if room is not None:
                by_room.setdefault(room.room_id, (room, []))[1].append(pdu)
            elif event_id is not None:
                results[event_id] = {"error": error}
        answers = await asyncio.gather(
            *(self.pipeline.receive(origin, room, pdus) for room, pdus in by_room.values())
        )
        for answer in answers:
            for event_id, error in answer.items():
                results[event_id] = {"error": error} if error else {}
        for edu in body.get("edus", []):
            try:
                await self.edus.receive(origin, edu)
            except Exception:  # one bad EDU must not fail the transaction
                log.exception("failed to process an EDU from %s", origin)
        response = {"pdus": results}
        async with self.db.write() as conn:
            if await federation_store.get_txn_response(conn, origin, txn_id) is None:
                await federation_store.put_txn_response(
                    conn, origin, txn_id, response, self.clock.now_ms()
                )
        return response

    async def _precheck_pdu(
        self, origin: str, pdu: Any
    ) -> tuple[RoomCache | None, str | None, str | None]:
        """The PDU's room when the pipeline is to process it; else its event ID (if it
        has one) and why it is dropped."""
        if not isinstance(pdu, dict) or not isinstance(pdu.get("room_id"), str):
            return None, None, None
        room = await self.rooms.room(pdu["room_id"])
        if room is None and self.joins.underway(pdu["room_id"]):
            # The resident sent it before our join's answer is stored: wait for that.
            await self.joins.wait(pdu["room_id"])
            room = await self.rooms.room(pdu["room_id"])
        if room is None:
            event_id = self._event_id_or_none(pdu)
            log.info("dropped PDU %s from %s: unknown room %s", event_id, origin, pdu["room_id"])
            return None, event_id, "unknown room"
        event_id = self._event_id_or_none(pdu, room)
        if await self.access.acl_denies(room, origin):
            log.info("dropped PDU %s from %s: denied by the server ACL", event_id, origin)
            return None, event_id, "server is denied by the room's server ACL"
        sender = pdu.get("sender")
        if not isinstance(sender, str) or (
            domain_of(sender) != origin and pdu.get("type") != "m.room.member"
        ):
            # Servers relay only their own users' events (a membership event may be
            # relayed by the resident server of a join/leave/knock handshake).
            error = f"event sender {sender!r} is not a user of {origin}"
            log.info("dropped PDU %s from %s: %s", event_id, origin, error)
            return None, event_id, error
        return room, event_id, None

    def _event_id_or_none(self, pdu: dict[str, Any], room: RoomCache | None = None) -> str | None:
        return event_id_or_none(pdu, room.version if room else room_versions.get("12"))

    # ------------------------------------------------------------- join / leave / knock / invite

    async def on_make_membership(
        self, origin: str, membership: str, room_id: str, user_id: str, versions: list[str]
    ) -> dict[str, Any]:
        return await self.memberships.on_make_membership(
            origin, membership, room_id, user_id, versions
        )

    async def on_send_membership(
        self,
        origin: str,
        membership: str,
        room_id: str,
        event_id: str,
        pdu: Any,
        omit_members: bool,
    ) -> dict[str, Any]:
        return await self.memberships.on_send_membership(
            origin, membership, room_id, event_id, pdu, omit_members
        )

    async def on_invite(
        self, origin: str, room_id: str, event_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        return await self.memberships.on_invite(origin, room_id, event_id, body)

    # ------------------------------------------------------------- events and state

    async def on_get_event(self, origin: str, event_id: str) -> dict[str, Any]:
        event = await self.rooms.get_event(event_id)
        if event is None:
            raise not_found("Event not found")
        room = await self.access.room(event.room_id)
        await self.access.require_origin_in_room(room, origin)
        return await self.history.event(origin, room, event)

    async def on_state(
        self, origin: str, room_id: str, event_id: str, ids_only: bool
    ) -> dict[str, Any]:
        room = await self.access.room(room_id)
        await self.access.require_origin_in_room(room, origin)
        event = await self.rooms.get_event(event_id)
        if event is None or event.room_id != room_id or event.state_group is None:
            raise not_found("Event not found or state unknown at it")
        return await self.history.state(event, ids_only)

    async def on_event_auth(self, origin: str, room_id: str, event_id: str) -> dict[str, Any]:
        room = await self.access.room(room_id)
        await self.access.require_origin_in_room(room, origin)
        event = await self.rooms.get_event(event_id)
        if event is None or event.room_id != room_id:
            raise not_found("Event not found")
        return await self.history.event_auth(event)

    async def on_backfill(
        self, origin: str, room_id: str, event_ids: list[str], limit: int
    ) -> dict[str, Any]:
        room = await self.access.room(room_id)
        await self.access.require_origin_in_room(room, origin)
        return await self.history.backfill(origin, room, event_ids, limit)

    async def on_get_missing_events(
        self, origin: str, room_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        room = await self.access.room(room_id)
        await self.access.require_origin_in_room(room, origin)
        return await self.history.missing_events(origin, room, body)

    # ------------------------------------------------------------- queries

    async def on_query(self, origin: str, query_type: str, args: dict[str, str]) -> dict[str, Any]:
        if query_type == "directory":
            alias = args.get("room_alias", "")
            async with self.db.read() as conn:
                room_id = await room_store.get_alias(conn, alias)
            if room_id is None:
                raise not_found(f"Room alias {alias} not found")
            room = await self.rooms.room(room_id)
            servers = sorted(servers_in_room(room)) if room else [self.server_name]
            if self.server_name in servers:
                servers.remove(self.server_name)
                servers.insert(0, self.server_name)
            return {"room_id": room_id, "servers": servers}
        if query_type == "profile":
            user_id = args.get("user_id", "")
            if not user_id or domain_of(user_id) != self.server_name:
                raise MatrixError(400, "M_INVALID_PARAM", "Not a user of this server")
            profile = await self.directory.get_profile(user_id)
            field = args.get("field")
            if field:
                return {field: profile[field]} if field in profile else {}
            return profile
        raise MatrixError(404, "M_UNRECOGNIZED", f"Unknown query type {query_type}")

    async def on_user_devices(self, origin: str, user_id: str) -> dict[str, Any]:
        return await self.keys.federation_user_devices(origin, user_id)

    async def on_user_keys(self, origin: str, action: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self.keys.federation_user_keys(origin, action, body)

    async def on_public_rooms(
        self, origin: str, limit: int | None, since: str | None, search: str | None
    ) -> dict[str, Any]:
        return await self.directory.public_rooms(search or "", limit or 100, since)

    async def on_hierarchy(self, origin: str, room_id: str, suggested_only: bool) -> dict[str, Any]:
        await self.access.check_acl(await self.access.room(room_id), origin)
        return await self.summaries.for_server(
            origin, room_id, suggested_only, self.access.acl_denies
        )

    async def on_timestamp_to_event(
        self, origin: str, room_id: str, ts: int, forward: bool
    ) -> dict[str, Any]:
        """The room's event nearest ``ts`` here, for a server in the room (Synapse asks
        only the ACL; a server that is not in the room learns nothing of its events)."""
        room = await self.access.room(room_id)
        await self.access.require_origin_in_room(room, origin)
        for event in await timestamp_candidates(self.rooms, room_id, ts, forward):
            return {"event_id": event.event_id, "origin_server_ts": event.pdu["origin_server_ts"]}
        raise not_found(f"Unable to find an event from {ts} in direction {'f' if forward else 'b'}")

    async def on_openid_userinfo(self, access_token: str) -> str | None:
        return await self.openid.user_info(access_token)

    async def on_media(self, origin: str, media_id: str) -> web.StreamResponse:
        return await self.media.serve(origin, media_id)

    async def on_media_thumbnail(
        self, origin: str, media_id: str, query: dict[str, str]
    ) -> web.StreamResponse:
        return await self.media.serve_thumbnail(origin, media_id, query)
