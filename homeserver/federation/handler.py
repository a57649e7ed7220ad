"""The node's answers to other servers (implements federation.server.FederationHandler)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web

from federation import auth as engine_auth
from federation import events as engine_events
from federation import room_versions
from federation.canonical import encode_canonical_json
from federation.errors import AuthError, CanonicalJSONError, FederationError, MatrixError
from federation.identifiers import domain_of
from federation.sender import TransactionSender
from homeserver.accounts.service import AccountService
from homeserver.federation.edus import EduReceiver
from homeserver.federation.pipeline import EventPipeline
from homeserver.federation.serving import HistoryServer
from homeserver.federation.verify import DroppedEvent, event_id_or_none, server_allowed
from homeserver.rooms.cache import RoomCache
from homeserver.rooms.directory import DirectoryService
from homeserver.rooms.outliers import OutlierMemberships
from homeserver.rooms.service import RoomService
from homeserver.storage import federation as federation_store
from homeserver.storage import rooms as room_store
from homeserver.storage.events import StoredEvent
from homeserver.sync.typing import TypingService
from homeserver.userdata.service import UserDataService

log = logging.getLogger(__name__)

INVITE_STATE_TYPES = (
    "m.room.create", "m.room.join_rules", "m.room.name", "m.room.avatar",
    "m.room.canonical_alias", "m.room.encryption", "m.room.topic",
)  # fmt: skip


def forbidden(message: str) -> MatrixError:
    return MatrixError(403, "M_FORBIDDEN", message)


def not_found(message: str) -> MatrixError:
    return MatrixError(404, "M_NOT_FOUND", message)


class NodeFederationHandler:
    def __init__(
        self,
        rooms: RoomService,
        pipeline: EventPipeline,
        sender: TransactionSender,
        typing: TypingService,
        userdata: UserDataService,
        directory: DirectoryService,
        accounts: AccountService,
        outliers: OutlierMemberships,
    ) -> None:
        self.rooms = rooms
        self.outliers = outliers
        self.accounts = accounts
        self.pipeline = pipeline
        self.sender = sender
        self.typing = typing
        self.userdata = userdata
        self.directory = directory
        self.server_name = rooms.server_name
        self.db = rooms.db
        self.edus = EduReceiver(rooms, typing, userdata, self._acl_denies)
        #: Extra EDU handlers by type (to-device, device lists...), set by other services.
        self.edu_handlers: dict[str, Any] = self.edus.handlers
        #: Answers for /user/devices and /user/keys/*, set by the E2EE service when present.
        self.keys_handler: Any = None
        self.media_handler: Any = None
        self.media_thumbnail_handler: Any = None
        self.history = HistoryServer(rooms, pipeline.resolver)

    # ------------------------------------------------------------- helpers

    async def _room(self, room_id: str) -> RoomCache:
        room = await self.rooms.room(room_id)
        if room is None:
            raise not_found(f"Unknown room {room_id}")
        return room

    async def _acl_denies(self, room: RoomCache, origin: str) -> bool:
        acl = await self.rooms.state_content(room, "m.room.server_acl")
        return bool(acl) and not server_allowed(acl, origin)

    async def _check_acl(self, room: RoomCache, origin: str) -> None:
        if await self._acl_denies(room, origin):
            raise forbidden(f"Server {origin} is denied by the room's server ACL")

    async def _require_origin_in_room(self, room: RoomCache, origin: str) -> None:
        await self._check_acl(room, origin)
        if not any(domain_of(user) == origin for user in room.members):
            visibility = (await self.rooms.state_content(room, "m.room.history_visibility")).get(
                "history_visibility"
            )
            if visibility != "world_readable":
                raise forbidden(f"Server {origin} is not in room {room.room_id}")

    def servers_in_room(self, room: RoomCache) -> set[str]:
        return {domain_of(u) for u, m in room.members.items() if m == "join"}

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
                    conn, origin, txn_id, response, self.rooms.clock.now_ms()
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
        if room is None:
            event_id = self._event_id_or_none(pdu)
            log.info("dropped PDU %s from %s: unknown room %s", event_id, origin, pdu["room_id"])
            return None, event_id, "unknown room"
        event_id = self._event_id_or_none(pdu, room)
        if await self._acl_denies(room, origin):
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

    # ------------------------------------------------------------- join / leave / knock

    async def on_make_membership(
        self, origin: str, membership: str, room_id: str, user_id: str, versions: list[str]
    ) -> dict[str, Any]:
        room = await self._room(room_id)
        await self._check_acl(room, origin)
        if domain_of(user_id) != origin:
            raise forbidden(f"{user_id} is not a user of {origin}")
        if membership in ("join", "knock") and room.version.identifier not in (versions or ["1"]):
            raise MatrixError(
                400, "M_INCOMPATIBLE_ROOM_VERSION", f"Room version {room.version.identifier} not supported by {origin}",
                room_version=room.version.identifier,
            )  # fmt: skip
        content: dict[str, Any] = {"membership": membership}
        if membership == "join":
            authoriser = await self._restricted_authoriser(room, user_id)
            if authoriser:
                content["join_authorised_via_users_server"] = authoriser
        proto = {
            "type": "m.room.member",
            "sender": user_id,
            "state_key": user_id,
            "content": content,
        }
        auth_ids, auth_state = await self.rooms.auth_for(room, proto)
        template = {
            **proto,
            "room_id": room.room_id,
            "origin_server_ts": self.rooms.clock.now_ms(),
            "depth": room.depth + 1,
            "prev_events": room.extremities[-10:],
            "auth_events": auth_ids,
        }
        try:
            engine_auth.check(template, auth_state, room.version)
        except AuthError as e:
            raise forbidden(f"You are not allowed to {membership} this room: {e.reason}") from None
        return {"event": template, "room_version": room.version.identifier}

    async def _restricted_authoriser(self, room: RoomCache, user_id: str) -> str | None:
        rule = await self.rooms.state_content(room, "m.room.join_rules")
        if rule.get("join_rule") not in ("restricted", "knock_restricted"):
            return None
        if room.members.get(user_id) in ("join", "invite"):
            return None
        local = sorted(u for u in room.joined() if domain_of(u) == self.server_name)
        return local[0] if local else None

    async def on_send_membership(
        self,
        origin: str,
        membership: str,
        room_id: str,
        event_id: str,
        pdu: Any,
        omit_members: bool,
    ) -> dict[str, Any]:
        room = await self._room(room_id)
        await self._check_acl(room, origin)
        if not isinstance(pdu, dict) or pdu.get("type") != "m.room.member":
            raise MatrixError(400, "M_BAD_JSON", "Expected an m.room.member event")
        state_key, sender = pdu.get("state_key"), pdu.get("sender")
        if state_key != sender or not isinstance(sender, str) or domain_of(sender) != origin:
            raise forbidden("The member event must be for a user of the sending server")
        if _membership(pdu) != membership:
            raise MatrixError(400, "M_BAD_JSON", f"Expected membership {membership}")
        authoriser = pdu["content"].get("join_authorised_via_users_server")
        if (
            membership == "join"
            and isinstance(authoriser, str)
            and domain_of(authoriser) == self.server_name
        ):
            pdu = engine_events.sign_event(
                pdu, room.version, self.server_name, self.rooms.signing_key
            )
        try:
            verified = await self.pipeline.verify(pdu, room)
        except DroppedEvent as e:
            raise MatrixError(400, "M_BAD_JSON", f"Invalid event: {e}") from None
        if verified.event_id != event_id:
            raise MatrixError(400, "M_BAD_JSON", "Event ID does not match the event")
        errors = await self.pipeline.receive_verified(origin, room, [(event_id, verified.pdu)])
        stored = await self.rooms.get_event(event_id)
        if stored is None or stored.outlier:
            raise forbidden(f"Event not accepted: {errors.get(event_id) or 'unknown'}")
        if stored.rejected_reason:
            raise forbidden(f"Event rejected: {stored.rejected_reason}")
        others = self.servers_in_room(room) - {origin, self.server_name}
        await self.sender.send_pdu(stored.pdu, others)
        if membership != "join":
            return {}
        return await self._join_response(room, stored, omit_members)

    async def _join_response(
        self, room: RoomCache, join: StoredEvent, omit_members: bool
    ) -> dict[str, Any]:
        async with self.db.read() as conn:
            parent = await self.rooms.state_store.parent(conn, join.state_group)
            state = await self.rooms.state_store.get_state(conn, parent)
        state_ids = list(state.values())
        if omit_members:
            keep = {join.sender}
            state_ids = [e for (t, k), e in state.items() if t != "m.room.member" or k in keep]
        closure = await self.pipeline.resolver.load_closure(
            [*state_ids, *join.pdu.get("auth_events", [])]
        )
        state_events = await self.rooms.get_events(state_ids)
        auth_chain = [pdu for event_id, pdu in closure.items() if event_id not in set(state_ids)]
        return {
            "origin": self.server_name,
            "state": [state_events[e].pdu for e in state_ids if e in state_events],
            "auth_chain": auth_chain,
            "event": join.pdu,
            "members_omitted": omit_members,
            "servers_in_room": sorted(self.servers_in_room(room)),
        }

    # ------------------------------------------------------------- invites

    async def on_invite(
        self, origin: str, room_id: str, event_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        version_id = body.get("room_version")
        try:
            version = room_versions.get(version_id if isinstance(version_id, str) else "")
        except FederationError:
            raise MatrixError(
                400, "M_INCOMPATIBLE_ROOM_VERSION", f"Room version {version_id!r} is not supported",
                room_version=version_id,
            ) from None  # fmt: skip
        pdu = body.get("event")
        if (
            not isinstance(pdu, dict)
            or pdu.get("type") != "m.room.member"
            or pdu.get("room_id") != room_id
        ):
            raise MatrixError(400, "M_BAD_JSON", "Expected an m.room.member invite for this room")
        target, sender = pdu.get("state_key"), pdu.get("sender")
        if _membership(pdu) != "invite" or not isinstance(target, str):
            raise MatrixError(400, "M_BAD_JSON", "Expected membership invite")
        if (
            domain_of(target) != self.server_name
            or not isinstance(sender, str)
            or domain_of(sender) != origin
        ):
            raise forbidden("Invites must be from the origin's user to a user of this server")
        user = await self.accounts.get_user(target)
        if user is None or user.deactivated:
            raise not_found(f"Unknown user {target}")
        probe = RoomCache(room_id, version, {}, None, [], 0)
        try:
            verified = await self.pipeline.verify(pdu, probe)
        except DroppedEvent as e:
            raise MatrixError(400, "M_BAD_JSON", f"Invalid invite: {e}") from None
        if verified.event_id != event_id:
            raise MatrixError(400, "M_BAD_JSON", "Event ID does not match the event")
        signed = engine_events.sign_event(
            verified.pdu, version, self.server_name, self.rooms.signing_key
        )
        stripped = _invite_room_state(body.get("invite_room_state"))
        if len(stripped) != len(_list(body.get("invite_room_state"))):
            log.info(
                "invite %s from %s: kept %d of %d invite_room_state entries (malformed,"
                " duplicate or over the size limit)",
                event_id, origin, len(stripped), len(_list(body.get("invite_room_state"))),
            )  # fmt: skip
        await self.outliers.store_remote_invite(
            room_id, version.identifier, event_id, signed, stripped
        )
        return {"event": signed}

    # ------------------------------------------------------------- events and state

    async def on_get_event(self, origin: str, event_id: str) -> dict[str, Any]:
        event = await self.rooms.get_event(event_id)
        if event is None:
            raise not_found("Event not found")
        room = await self._room(event.room_id)
        await self._require_origin_in_room(room, origin)
        return await self.history.event(origin, room, event)

    async def on_state(
        self, origin: str, room_id: str, event_id: str, ids_only: bool
    ) -> dict[str, Any]:
        room = await self._room(room_id)
        await self._require_origin_in_room(room, origin)
        event = await self.rooms.get_event(event_id)
        if event is None or event.room_id != room_id or event.state_group is None:
            raise not_found("Event not found or state unknown at it")
        return await self.history.state(event, ids_only)

    async def on_event_auth(self, origin: str, room_id: str, event_id: str) -> dict[str, Any]:
        room = await self._room(room_id)
        await self._require_origin_in_room(room, origin)
        event = await self.rooms.get_event(event_id)
        if event is None or event.room_id != room_id:
            raise not_found("Event not found")
        return await self.history.event_auth(event)

    async def on_backfill(
        self, origin: str, room_id: str, event_ids: list[str], limit: int
    ) -> dict[str, Any]:
        room = await self._room(room_id)
        await self._require_origin_in_room(room, origin)
        return await self.history.backfill(origin, room, event_ids, limit)

    async def on_get_missing_events(
        self, origin: str, room_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        room = await self._room(room_id)
        await self._require_origin_in_room(room, origin)
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
            servers = sorted(self.servers_in_room(room)) if room else [self.server_name]
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
        if self.keys_handler is None:
            return {"user_id": user_id, "stream_id": 0, "devices": []}
        result: dict[str, Any] = await self.keys_handler.federation_user_devices(origin, user_id)
        return result

    async def on_user_keys(self, origin: str, action: str, body: dict[str, Any]) -> dict[str, Any]:
        if self.keys_handler is None:
            return {"device_keys": {}} if action == "query" else {"one_time_keys": {}}
        result: dict[str, Any] = await self.keys_handler.federation_user_keys(origin, action, body)
        return result

    async def on_public_rooms(
        self, origin: str, limit: int | None, since: str | None, search: str | None
    ) -> dict[str, Any]:
        return await self.directory.public_rooms(search or "", limit or 100, since)

    async def on_hierarchy(self, origin: str, room_id: str, suggested_only: bool) -> dict[str, Any]:
        # Imported here: the spaces code lives in homeserver/rooms/summary.py.
        from homeserver.rooms.summary import RoomSummaries

        await self._check_acl(await self._room(room_id), origin)
        summaries = RoomSummaries(self.rooms)
        return await summaries.for_server(origin, room_id, suggested_only, self._acl_denies)

    async def on_media(self, origin: str, media_id: str) -> web.StreamResponse:
        if self.media_handler is None:
            raise not_found("Media not found")
        response: web.StreamResponse = await self.media_handler(media_id)
        return response

    async def on_media_thumbnail(
        self, origin: str, media_id: str, query: dict[str, str]
    ) -> web.StreamResponse:
        if self.media_thumbnail_handler is None:
            raise not_found("Media not found")
        response: web.StreamResponse = await self.media_thumbnail_handler(media_id, query)
        return response


def _stripped(event: dict[str, Any]) -> dict[str, Any]:
    return {k: event[k] for k in ("type", "state_key", "content", "sender") if k in event}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _membership(pdu: dict[str, Any]) -> Any:
    content = pdu.get("content")
    return content.get("membership") if isinstance(content, dict) else None


#: At most this many stripped state events, and bytes of them, are kept from an invite.
MAX_INVITE_STATE_EVENTS = 50
MAX_INVITE_STATE_BYTES = 65_536


def _invite_room_state(value: Any) -> list[dict[str, Any]]:
    """The well-formed stripped state events of a remote invite, bounded in number and
    size, one per (type, state_key): the invitee's /sync serves them as they are, so a
    non-object, a non-string type or state key, a non-object content or megabytes of
    junk must not reach it (Synapse GHSA-f3r3-h2mq-hx2h, CVE-2023-32323)."""
    kept: dict[tuple[str, str], dict[str, Any]] = {}
    size = 0
    for event in _list(value):
        if len(kept) >= MAX_INVITE_STATE_EVENTS:
            break
        if not isinstance(event, dict):
            continue
        stripped = _stripped(event)
        if (
            not isinstance(stripped.get("type"), str)
            or not isinstance(stripped.get("state_key"), str)
            or not isinstance(stripped.get("content"), dict)
            or not isinstance(stripped.get("sender", ""), str)
        ):
            continue
        key = (stripped["type"], stripped["state_key"])
        try:
            length = len(encode_canonical_json(stripped))
        except CanonicalJSONError:
            continue
        if key in kept or size + length > MAX_INVITE_STATE_BYTES:
            continue
        kept[key] = stripped
        size += length
    return list(kept.values())
