"""Room operations as the Client-Server API offers them: create, join, invite, leave, kick,
ban, send, state, redact.  Authorization itself is the engine's auth rules, applied by
:class:`RoomService` to every event; this layer adds the checks the spec asks of a server
beyond them (e.g. who may redact what; the content checks are in ``content.py``, the
request and presets of ``/createRoom`` in ``creation.py``).
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from federation import auth as engine_auth
from federation.client import FederationClientError
from federation.identifiers import domain_of, is_valid_room_alias, is_valid_user_id
from homeserver.common.errors import MatrixError, bad_json, forbidden, not_found
from homeserver.rooms.cache import RoomCache
from homeserver.rooms.content import check_content, check_event_shape
from homeserver.rooms.creation import initial_events, parse_create_request
from homeserver.rooms.outliers import KNOCKED_VIA, OutlierMemberships
from homeserver.rooms.policy import EventPolicy
from homeserver.rooms.ports import Accounts, RemoteRooms
from homeserver.rooms.relation_checks import check_relation
from homeserver.rooms.restricted import AUTHORISER_KEY, RestrictedJoins, unable_to_grant
from homeserver.rooms.service import RoomService
from homeserver.storage import rooms as room_store
from homeserver.storage import txns as txn_store

log = logging.getLogger(__name__)


class RoomHandler:
    def __init__(
        self,
        rooms: RoomService,
        accounts: Accounts,
        outliers: OutlierMemberships,
        remote: RemoteRooms | None = None,
        policy: EventPolicy | None = None,
    ) -> None:
        self.rooms = rooms
        self.accounts = accounts
        self.outliers = outliers
        self.remote = remote
        #: The features' event policy (homeserver/extensions), if any.
        self.policy = policy
        self.server_name = rooms.server_name
        self.restricted = RestrictedJoins(rooms.reader, rooms.server_name)

    # ------------------------------------------------------------- create

    async def create_room(self, user_id: str, body: dict[str, Any]) -> tuple[str, str | None]:
        """``/createRoom``: the new room's ID and its alias, if one was asked for."""
        request = parse_create_request(body)
        if self.policy is not None:
            await self.policy.user_may_create_room(user_id, body)
        alias = None
        if request.alias_name is not None:
            alias = f"#{request.alias_name}:{self.server_name}"
            if not is_valid_room_alias(alias):
                raise MatrixError(400, "M_INVALID_PARAM", "Invalid room_alias_name")
            async with self.rooms.db.read() as conn:
                if await room_store.get_alias(conn, alias) is not None:
                    raise MatrixError(400, "M_ROOM_IN_USE", "Room alias already taken")
        then = initial_events(request, user_id, alias, body)
        room_id = await self.rooms.create_room_events(
            request.version.identifier,
            user_id,
            request.creation_content,
            request.visibility == "public",
            then,
            # The creator's join carries their profile, as every other join (and Synapse's).
            creator_join=await self._profile_content(user_id, "join"),
        )
        if alias:
            async with self.rooms.db.write() as conn:
                await room_store.insert_alias(conn, alias, room_id, user_id)
        for invitee in request.invites:
            await self.invite(user_id, room_id, invitee, is_direct=request.is_direct)
        return room_id, alias

    # ------------------------------------------------------------- membership

    async def profile_content(self, user_id: str, membership: str) -> dict[str, Any]:
        """A membership's content with the user's profile (local users)."""
        return await self._profile_content(user_id, membership)

    async def _profile_content(self, user_id: str, membership: str) -> dict[str, Any]:
        content: dict[str, Any] = {"membership": membership}
        user = await self.accounts.get_user(user_id)
        if user is not None:
            if user.displayname is not None:
                content["displayname"] = user.displayname
            if user.avatar_url is not None:
                content["avatar_url"] = user.avatar_url
        return content

    async def resolve_room(self, room_id_or_alias: str) -> tuple[str, list[str]]:
        """A room ID and servers to join it through, from a room ID or an alias."""
        if room_id_or_alias.startswith("#"):
            if ":" not in room_id_or_alias:
                raise MatrixError(400, "M_INVALID_PARAM", "Invalid room alias")
            if domain_of(room_id_or_alias) != self.server_name and self.remote is not None:
                return await self.remote.resolve_alias(room_id_or_alias)
            async with self.rooms.db.read() as conn:
                room_id = await room_store.get_alias(conn, room_id_or_alias)
            if room_id is None:
                raise not_found(f"Room alias {room_id_or_alias} not found")
            return room_id, []
        if not room_id_or_alias.startswith("!"):
            raise MatrixError(400, "M_INVALID_PARAM", "Not a room ID or alias")
        return room_id_or_alias, []

    async def join(
        self,
        user_id: str,
        room_id_or_alias: str,
        reason: str | None = None,
        via: list[str] | None = None,
    ) -> str:
        room_id, servers = await self.resolve_room(room_id_or_alias)
        room = await self.rooms.room(room_id)
        if room is not None and room.members.get(user_id) == "join":
            return room_id
        if self.policy is not None:
            invited = room is not None and room.members.get(user_id) == "invite"
            invited = invited or bool(await self._invite_servers(room_id, user_id))
            await self.policy.user_may_join_room(user_id, room_id, invited)
        content = await self._profile_content(user_id, "join")
        if reason:
            content["reason"] = reason
        joined_servers = (
            {domain_of(u) for u, m in room.members.items() if m == "join"} if room else set()
        )
        # A room we still take part in (or that no other server is in): join locally.
        if room is not None and (
            self.server_name in joined_servers or not joined_servers or self.remote is None
        ):
            if await self.restricted.applies(room, user_id):
                await self.restricted.check_conditions(room, user_id)
                authoriser = await self.restricted.local_authoriser(room)
                if authoriser is None:
                    return await self._join_via_inviters(user_id, room, content)
                content[AUTHORISER_KEY] = authoriser
            await self.rooms.send(room_id, user_id, "m.room.member", content, state_key=user_id)
            return room_id
        if self.remote is None:
            raise not_found(f"No known servers for room {room_id}")
        candidates = [*(via or []), *servers, *(await self._invite_servers(room_id, user_id))]
        if room is not None:
            candidates += sorted({domain_of(u) for u, m in room.members.items() if m == "join"})
        if ":" in room_id:
            candidates.append(domain_of(room_id))
        if self.policy is not None:
            await self.policy.user_may_join_via(user_id, room_id, list(dict.fromkeys(candidates)))
        await self.remote.join(user_id, room_id, candidates, content)
        return room_id

    async def _join_via_inviters(
        self, user_id: str, room: RoomCache, content: dict[str, Any]
    ) -> str:
        """A restricted join that no user here may authorise: through a server whose user
        may (as Synapse does), which checks the conditions again and signs the join."""
        servers = await self.restricted.other_authorising_servers(room)
        if self.remote is None or not servers:
            raise unable_to_grant(room.room_id)
        if self.policy is not None:
            await self.policy.user_may_join_via(user_id, room.room_id, servers)
        return await self.remote.join(user_id, room.room_id, servers, content)

    async def _invite_servers(self, room_id: str, user_id: str) -> list[str]:
        async with self.rooms.db.read() as conn:
            membership = await room_store.get_membership(conn, room_id, user_id)
        if membership is None or membership.membership != "invite":
            return []
        invite = await self.rooms.get_event(membership.event_id)
        return [domain_of(invite.sender)] if invite else []

    async def invite(
        self,
        sender: str,
        room_id: str,
        target: str,
        *,
        reason: str | None = None,
        is_direct: bool = False,
    ) -> None:
        if not is_valid_user_id(target):
            raise MatrixError(400, "M_INVALID_PARAM", "Invalid user ID")
        room = await self.rooms.require_joined(room_id, sender)
        if room.members.get(target) == "ban":
            raise forbidden(f"{target} is banned from the room")
        if room.members.get(target) == "join":
            raise forbidden(f"{target} is already in the room")
        if self.policy is not None:
            await self.policy.user_may_invite(sender, target, room_id)
        local = self.accounts.is_local(target)
        if local and await self.accounts.get_user(target) is None:
            raise not_found(f"Unknown user {target}")
        content: dict[str, Any] = (
            await self._profile_content(target, "invite") if local else {"membership": "invite"}
        )
        if is_direct:
            content["is_direct"] = True
        if reason:
            content["reason"] = reason
        countersign = None
        if not local:
            if self.remote is None:
                raise forbidden("Federation is disabled on this server")
            countersign = self.remote.invite
        await self.rooms.send(
            room_id, sender, "m.room.member", content, state_key=target, countersign=countersign
        )

    async def leave(self, user_id: str, room_id: str, reason: str | None = None) -> None:
        room = await self.rooms.room(room_id)
        remote_invite = room is None or (
            room.members.get(user_id) == "invite"
            and not any(
                m == "join" and domain_of(u) == self.server_name for u, m in room.members.items()
            )
            and any(s != self.server_name for s in await self._invite_servers(room_id, user_id))
        )
        if remote_invite or room is None:
            await self._reject_remote_invite(user_id, room_id)
            return
        if room.members.get(user_id) not in ("join", "invite", "knock"):
            if room.members.get(user_id) in ("leave", None):
                return
            raise forbidden("You cannot leave this room")
        content: dict[str, Any] = {"membership": "leave"}
        if reason:
            content["reason"] = reason
        await self.rooms.send(room_id, user_id, "m.room.member", content, state_key=user_id)

    async def _knock_servers(self, room_id: str, user_id: str) -> list[str]:
        """The server a knock on a room this node is not in went through (to rescind it)."""
        async with self.rooms.db.read() as conn:
            membership = await room_store.get_membership(conn, room_id, user_id)
        if membership is None or membership.membership != "knock":
            return []
        knock = await self.rooms.get_event(membership.event_id)
        via = knock.pdu.get("unsigned", {}).get(KNOCKED_VIA) if knock else None
        return [via] if isinstance(via, str) else []

    async def _reject_remote_invite(self, user_id: str, room_id: str) -> None:
        """Reject an invite to, or rescind a knock on, a room this node is not in."""
        servers = await self._invite_servers(room_id, user_id) or await self._knock_servers(
            room_id, user_id
        )
        if not servers:
            raise not_found(f"Unknown room {room_id}")
        if self.remote is None:
            raise forbidden("Federation is disabled on this server")
        try:
            await self.remote.reject_invite(user_id, room_id, servers[0])
        except (FederationClientError, MatrixError) as e:
            # The inviting server is gone or refuses: forget the invite locally anyway.
            log.info("rejecting the invite to %s via %s failed: %s", room_id, servers[0], e)
            await self.outliers.forget_remote_invite(room_id, user_id)

    async def set_membership(
        self, sender: str, room_id: str, target: str, membership: str, reason: str | None
    ) -> None:
        """kick (leave for another user), ban, unban (leave of a banned user)."""
        if not is_valid_user_id(target):
            raise MatrixError(400, "M_INVALID_PARAM", "Invalid user ID")
        room = await self.rooms.require_room(room_id)
        if membership == "unban" and room.members.get(target) != "ban":
            raise forbidden(f"{target} is not banned")
        if membership == "kick" and room.members.get(target) not in ("join", "invite", "knock"):
            raise forbidden(f"{target} is not in the room")
        content: dict[str, Any] = {"membership": "ban" if membership == "ban" else "leave"}
        if reason:
            content["reason"] = reason
        await self.rooms.send(room_id, sender, "m.room.member", content, state_key=target)

    async def forget(self, user_id: str, room_id: str) -> None:
        room = await self.rooms.room(room_id)
        if room is not None and room.members.get(user_id) in ("join", "invite", "knock"):
            raise MatrixError(400, "M_UNKNOWN", "You must leave the room before forgetting it")
        with self.rooms.db.stream.allocate() as position:
            async with self.rooms.db.write() as conn:
                await room_store.forget(conn, room_id, user_id, position)

    # ------------------------------------------------------------- events

    async def send_message(
        self, user_id: str, device_id: str, room_id: str, event_type: str, content: Any, txn_id: str
    ) -> str:
        content = check_content(content)
        check_event_shape(event_type, content, is_state=False)
        await self.rooms.require_joined(room_id, user_id)
        # A repeated transaction is answered with its first event by the room's group
        # commit, which looks all of its batch up at once.
        path = f"/rooms/{_quote(room_id)}/send/{_quote(event_type)}"
        txn = (device_id, txn_store.txn_key(path, txn_id))
        await check_relation(self.rooms.reader, room_id, user_id, event_type, content, txn)
        return await self.rooms.send(room_id, user_id, event_type, content, txn=txn)

    async def send_state(
        self, user_id: str, room_id: str, event_type: str, state_key: str, content: Any
    ) -> str:
        content = check_content(content)
        room = await self.rooms.require_joined(room_id, user_id)
        if event_type == "m.room.member":
            return await self._member_state(user_id, room, state_key, content)
        check_event_shape(event_type, content, is_state=True)
        if event_type == "m.room.canonical_alias":
            await self._check_canonical_alias(room, content)
        current = room.state.get((event_type, state_key))
        if current is not None:
            existing = await self.rooms.get_event(current)
            if (
                existing is not None
                and existing.pdu.get("content") == content
                and existing.sender == user_id
            ):
                return current  # idempotent, as Synapse does
        return await self.rooms.send(room_id, user_id, event_type, content, state_key=state_key)

    async def _member_state(
        self, user_id: str, room: RoomCache, target: str, content: dict[str, Any]
    ) -> str:
        """A membership through the state API, as Synapse takes it: one's own join again
        changes one's profile in this room (Element's per-room nickname); a leave, ban or
        invite goes the way of the membership endpoints (so does a leave of another user, a
        kick)."""
        membership = content.get("membership")
        if not isinstance(membership, str):
            raise bad_json("Invalid membership (must be a string)")
        reason = content.get("reason") if isinstance(content.get("reason"), str) else None
        if membership == "join" and target == user_id:
            # Only this server names who authorised a join (as Synapse, which strips it).
            content = {k: v for k, v in content.items() if k != AUTHORISER_KEY}
            check_event_shape("m.room.member", content, is_state=True)
            return await self.rooms.send(
                room.room_id, user_id, "m.room.member", content, state_key=target
            )
        if membership == "leave" and target == user_id:
            await self.leave(user_id, room.room_id, reason)
        elif membership == "leave":
            await self.set_membership(user_id, room.room_id, target, "kick", reason)
        elif membership == "ban":
            await self.set_membership(user_id, room.room_id, target, "ban", reason)
        elif membership == "invite":
            await self.invite(
                user_id,
                room.room_id,
                target,
                reason=reason,
                is_direct=content.get("is_direct") is True,
            )
        else:
            raise forbidden(f"Cannot set membership {membership!r} through the state API")
        event_id = room.state.get(("m.room.member", target))
        if event_id is None:  # cannot happen: the membership was just stored
            raise MatrixError(500, "M_UNKNOWN", "The membership was not stored")
        return event_id

    async def _check_canonical_alias(self, room: RoomCache, content: dict[str, Any]) -> None:
        aliases = [content.get("alias")] if content.get("alias") else []
        alt = content.get("alt_aliases", [])
        if not isinstance(alt, list):
            raise bad_json("alt_aliases must be a list")
        for alias in [*aliases, *alt]:
            if not isinstance(alias, str):
                raise bad_json("aliases must be strings")
            if not is_valid_room_alias(alias):
                raise MatrixError(400, "M_BAD_ALIAS", "Invalid room alias")
            if alias.endswith(":" + self.server_name):
                async with self.rooms.db.read() as conn:
                    if await room_store.get_alias(conn, alias) != room.room_id:
                        raise MatrixError(
                            400, "M_BAD_ALIAS", f"{alias} does not point to this room"
                        )

    async def check_state_power(self, user_id: str, room: RoomCache, event_type: str) -> None:
        """Raise 403 unless ``user_id`` could send a state event of ``event_type``."""
        auth_state = await self.rooms.reader.power_state(room)
        level = engine_auth.user_power_level(user_id, auth_state, room.version)
        if level < engine_auth.required_power_for_event(event_type, True, auth_state):
            raise forbidden(f"You don't have permission to change {event_type}")

    async def redact(
        self,
        user_id: str,
        device_id: str,
        room_id: str,
        event_id: str,
        reason: str | None,
        txn_id: str,
    ) -> str:
        room = await self.rooms.require_joined(room_id, user_id)
        target = await self.rooms.get_event(event_id)
        if target is None or target.room_id != room_id:
            raise not_found("Event not found")
        if target.sender != user_id:
            auth_state = await self.rooms.reader.power_state(room)
            level = engine_auth.user_power_level(user_id, auth_state, room.version)
            if level < engine_auth.named_level(auth_state, "redact"):
                raise forbidden("You don't have permission to redact other users' events")
        content: dict[str, Any] = {}
        if reason:
            content["reason"] = reason
        extra = None
        if room.version.redacts_in_content:
            content["redacts"] = event_id
        else:
            extra = {"redacts": event_id}
        path = f"/rooms/{_quote(room_id)}/redact/{_quote(event_id)}"
        txn = (device_id, txn_store.txn_key(path, txn_id))
        return await self.rooms.send(
            room_id, user_id, "m.room.redaction", content, txn=txn, extra=extra
        )


def _quote(part: str) -> str:
    """A path parameter as it would be sent, so that the path names the endpoint exactly."""
    return quote(part, safe="")
