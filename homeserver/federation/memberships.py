"""Other servers' users joining, leaving, knocking and being invited: ``/make_*`` and
``/send_*`` of a membership through this node, and invites of this node's users."""

from __future__ import annotations

import logging
from typing import Any

from federation import auth as engine_auth
from federation import events as engine_events
from federation import room_versions
from federation.canonical import encode_canonical_json
from federation.errors import AuthError, CanonicalJSONError, FederationError
from federation.identifiers import domain_of
from federation.sender import TransactionSender
from homeserver.common.errors import MatrixError, forbidden, not_found
from homeserver.federation.access import RoomAccess, servers_in_room
from homeserver.federation.pipeline import EventPipeline
from homeserver.federation.ports import UserLookup
from homeserver.federation.verify import DroppedEvent
from homeserver.rooms.cache import RoomCache
from homeserver.rooms.eventformat import STRIPPED_STATE_TYPES, stripped_event
from homeserver.rooms.outliers import OutlierMemberships
from homeserver.rooms.policy import EventPolicy, ProposedEvent
from homeserver.rooms.restricted import AUTHORISER_KEY, RestrictedJoins, server_of
from homeserver.rooms.service import RoomService
from homeserver.storage.events import StoredEvent

log = logging.getLogger(__name__)

INVITE_STATE_TYPES = (
    "m.room.create", "m.room.join_rules", "m.room.name", "m.room.avatar",
    "m.room.canonical_alias", "m.room.encryption", "m.room.topic",
)  # fmt: skip


class MembershipHandler:
    def __init__(
        self,
        rooms: RoomService,
        pipeline: EventPipeline,
        sender: TransactionSender,
        access: RoomAccess,
        accounts: UserLookup,
        outliers: OutlierMemberships,
        policy: EventPolicy | None = None,
    ) -> None:
        self.rooms = rooms
        #: The features' event policy: asked of remote joins, leaves, knocks and invites.
        self.policy = policy
        self.pipeline = pipeline
        self.sender = sender
        self.access = access
        self.accounts = accounts
        self.outliers = outliers
        self.server_name = rooms.server_name
        self.db = rooms.db
        self.restricted = RestrictedJoins(rooms.reader, rooms.server_name)

    async def _ask_policy(self, origin: str, pdu: dict[str, Any]) -> None:
        """The features' event policy on a membership event another server asks us to
        take part in (its refusal is the answer to that server)."""
        if self.policy is None:
            return
        room_id = str(pdu.get("room_id", ""))
        await self.policy.check_event(ProposedEvent.received(room_id, pdu, origin))

    async def on_make_membership(
        self, origin: str, membership: str, room_id: str, user_id: str, versions: list[str]
    ) -> dict[str, Any]:
        room = await self.access.room(room_id)
        await self.access.check_acl(room, origin)
        if domain_of(user_id) != origin:
            raise forbidden(f"{user_id} is not a user of {origin}")
        if membership in ("join", "knock") and room.version.identifier not in (versions or ["1"]):
            raise MatrixError(
                400, "M_INCOMPATIBLE_ROOM_VERSION", f"Room version {room.version.identifier} not supported by {origin}",
                room_version=room.version.identifier,
            )  # fmt: skip
        content: dict[str, Any] = {"membership": membership}
        if membership == "join":
            authoriser = await self.restricted.authoriser_for(room, user_id)
            if authoriser is not None:
                content[AUTHORISER_KEY] = authoriser
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
        # A restricted join will carry our signature (rule 4.2), which the template cannot.
        checked = (
            engine_events.sign_event(
                template, room.version, self.server_name, self.rooms.signing_key
            )
            if AUTHORISER_KEY in content
            else template
        )
        try:
            engine_auth.check(checked, auth_state, room.version)
        except AuthError as e:
            raise forbidden(f"You are not allowed to {membership} this room: {e.reason}") from None
        return {"event": template, "room_version": room.version.identifier}

    async def _vouch_for_join(self, room: RoomCache, pdu: dict[str, Any]) -> bool:
        """Whether to sign a join sent to us as its authorising server; raises when it
        names an authoriser who is not ours, or may not authorise, or when the joiner
        meets none of the room's allow conditions as far as this node can tell."""
        content, sender = pdu["content"], pdu["sender"]
        authoriser = content.get(AUTHORISER_KEY)
        if AUTHORISER_KEY in content and (
            not isinstance(authoriser, str) or server_of(authoriser) != self.server_name
        ):
            raise forbidden(
                f"This server authorises joins only by its own users, not {authoriser!r}"
            )
        if await self.restricted.applies(room, sender):
            await self.restricted.check_conditions(room, sender)
            if not isinstance(authoriser, str):
                raise forbidden(f"Joining {room.room_id} needs {AUTHORISER_KEY}")
            if not await self.restricted.may_authorise(room, authoriser):
                raise forbidden(f"{authoriser} may not authorise joining {room.room_id}")
        return isinstance(authoriser, str)

    async def on_send_membership(
        self,
        origin: str,
        membership: str,
        room_id: str,
        event_id: str,
        pdu: Any,
        omit_members: bool,
    ) -> dict[str, Any]:
        room = await self.access.room(room_id)
        await self.access.check_acl(room, origin)
        if not isinstance(pdu, dict) or pdu.get("type") != "m.room.member":
            raise MatrixError(400, "M_BAD_JSON", "Expected an m.room.member event")
        state_key, sender = pdu.get("state_key"), pdu.get("sender")
        if state_key != sender or not isinstance(sender, str) or domain_of(sender) != origin:
            raise forbidden("The member event must be for a user of the sending server")
        if _membership(pdu) != membership:
            raise MatrixError(400, "M_BAD_JSON", f"Expected membership {membership}")
        if membership == "join" and await self._vouch_for_join(room, pdu):
            pdu = engine_events.sign_event(
                pdu, room.version, self.server_name, self.rooms.signing_key
            )
        try:
            verified = await self.pipeline.verify(pdu, room)
        except DroppedEvent as e:
            raise MatrixError(400, "M_BAD_JSON", f"Invalid event: {e}") from None
        if verified.event_id != event_id:
            raise MatrixError(400, "M_BAD_JSON", "Event ID does not match the event")
        await self._ask_policy(origin, verified.pdu)
        errors = await self.pipeline.receive_verified(origin, room, [(event_id, verified.pdu)])
        stored = await self.rooms.get_event(event_id)
        if stored is None or stored.outlier:
            raise forbidden(f"Event not accepted: {errors.get(event_id) or 'unknown'}")
        if stored.rejected_reason:
            raise forbidden(f"Event rejected: {stored.rejected_reason}")
        others = servers_in_room(room) - {origin, self.server_name}
        await self.sender.send_pdu(stored.pdu, others)
        if membership == "knock":
            return {"knock_room_state": await self._knock_state(room)}
        if membership != "join":
            return {}
        return await self._join_response(room, stored, omit_members)

    async def _knock_state(self, room: RoomCache) -> list[dict[str, Any]]:
        """The stripped state a knocking user's server shows them (as an invite's)."""
        ids = [room.state[(t, "")] for t in STRIPPED_STATE_TYPES if (t, "") in room.state]
        found = await self.rooms.get_events(ids)
        return [stripped_event(found[i]) for i in ids if i in found]

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
            "servers_in_room": sorted(servers_in_room(room)),
        }

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
        if self.policy is not None:
            await self.policy.user_may_invite(sender, target, room_id)
            await self._ask_policy(origin, pdu)
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
