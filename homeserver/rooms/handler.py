"""Room operations as the Client-Server API offers them: create, join, invite, leave, kick,
ban, send, state, redact.  Authorization itself is the engine's auth rules, applied by
:class:`RoomService` to every event; this layer adds the checks the spec asks of a server
beyond them (e.g. who may redact what) and the presets of ``/createRoom``.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from federation import auth as engine_auth
from federation import room_versions
from federation.canonical import check_json_value
from federation.client import FederationClientError
from federation.errors import CanonicalJSONError, UnsupportedRoomVersion
from federation.identifiers import domain_of, is_valid_user_id
from homeserver.common.errors import MatrixError, bad_json, forbidden, not_found
from homeserver.rooms.cache import RoomCache
from homeserver.rooms.outliers import OutlierMemberships
from homeserver.rooms.ports import Accounts, RemoteRooms
from homeserver.rooms.service import RoomService
from homeserver.storage import events as event_store
from homeserver.storage import rooms as room_store

log = logging.getLogger(__name__)

PRESETS = ("private_chat", "public_chat", "trusted_private_chat")


def _check_content(content: Any) -> dict[str, Any]:
    if not isinstance(content, dict):
        raise bad_json("Event content must be a JSON object")
    try:
        check_json_value(content)
    except CanonicalJSONError as e:
        raise bad_json(f"Invalid event content: {e}") from e
    return content


_PL_INTS = ("ban", "events_default", "invite", "kick", "redact", "state_default", "users_default")
_PL_MAPS = ("events", "notifications", "users")


def _check_event_shape(event_type: str, content: dict[str, Any], is_state: bool) -> None:
    """Refuse (400) client events of core types whose content is not what they mean, as
    Synapse's event validator does: messages need a string ``body`` and ``msgtype``, names
    and topics are strings in state events, power levels are integers."""

    def strings(*keys: str) -> None:
        for key in keys:
            if not isinstance(content.get(key), str):
                raise bad_json(f"'{key}' must be a string in {event_type}")

    def is_int(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)

    if event_type == "m.room.message":
        strings("body", "msgtype")
    elif event_type in ("m.room.name", "m.room.topic", "m.room.tombstone", "m.room.member"):
        if not is_state:
            raise bad_json(f"{event_type} must be a state event")
        if event_type == "m.room.name":
            strings("name")
        elif event_type == "m.room.topic":
            strings("topic")
    elif event_type == "m.room.power_levels":
        for key in _PL_INTS:
            if key in content and not is_int(content[key]):
                raise bad_json(f"'{key}' must be an integer in m.room.power_levels")
        for key in _PL_MAPS:
            if key in content and not (
                isinstance(content[key], dict) and all(is_int(v) for v in content[key].values())
            ):
                raise bad_json(f"'{key}' must map to integers in m.room.power_levels")


class RoomHandler:
    def __init__(
        self,
        rooms: RoomService,
        accounts: Accounts,
        outliers: OutlierMemberships,
        remote: RemoteRooms | None = None,
    ) -> None:
        self.rooms = rooms
        self.accounts = accounts
        self.outliers = outliers
        self.remote = remote
        self.server_name = rooms.server_name

    # ------------------------------------------------------------- create

    async def create_room(self, user_id: str, body: dict[str, Any]) -> tuple[str, str | None]:
        version_id = body.get("room_version", room_versions.DEFAULT_ROOM_VERSION)
        try:
            version = room_versions.get(version_id)
        except UnsupportedRoomVersion:
            raise MatrixError(
                400, "M_UNSUPPORTED_ROOM_VERSION", f"Room version {version_id!r} is not supported"
            ) from None
        visibility = body.get("visibility", "private")
        if visibility not in ("public", "private"):
            raise bad_json("visibility must be 'public' or 'private'")
        preset = body.get("preset")
        if preset is None:
            preset = "public_chat" if visibility == "public" else "private_chat"
        if not isinstance(preset, str) or preset not in PRESETS:  # "" or {} are not presets
            raise bad_json(f"preset must be one of {', '.join(PRESETS)}")
        creation_content = _check_content(body.get("creation_content", {}))
        invites = body.get("invite", [])
        if not isinstance(invites, list) or not all(is_valid_user_id(u) for u in invites):
            raise bad_json("invite must be a list of user IDs")
        initial_state = body.get("initial_state", [])
        if not isinstance(initial_state, list):
            raise bad_json("initial_state must be a list")
        alias = None
        alias_name = body.get("room_alias_name")
        if alias_name is not None:
            if (
                not isinstance(alias_name, str)
                or not alias_name
                or ":" in alias_name
                or " " in alias_name
            ):
                raise MatrixError(400, "M_INVALID_PARAM", "Invalid room_alias_name")
            alias = f"#{alias_name}:{self.server_name}"
            async with self.rooms.db.read() as conn:
                if await room_store.get_alias(conn, alias) is not None:
                    raise MatrixError(400, "M_ROOM_IN_USE", "Room alias already taken")
        is_direct = body.get("is_direct") is True

        creators = {user_id}
        if version.creators_have_infinite_power:
            extra = creation_content.get("additional_creators", [])
            if isinstance(extra, list):
                creators.update(u for u in extra if isinstance(u, str))
        power = self._power_levels(version, user_id, creators, preset, invites)
        override = body.get("power_level_content_override")
        if override is not None:
            power.update(_check_content(override))

        then: list[tuple[str, str | None, dict[str, Any]]] = [("m.room.power_levels", "", power)]
        if alias:
            then.append(("m.room.canonical_alias", "", {"alias": alias}))
        join_rule = "public" if preset == "public_chat" else "invite"
        preset_state = {
            ("m.room.join_rules", ""): {"join_rule": join_rule},
            ("m.room.history_visibility", ""): {"history_visibility": "shared"},
        }
        if preset != "public_chat":
            preset_state[("m.room.guest_access", "")] = {"guest_access": "can_join"}
        for item in initial_state:
            if not isinstance(item, dict) or not isinstance(item.get("type"), str):
                raise bad_json("initial_state entries need a type")
            key = (item["type"], item.get("state_key", ""))
            if not isinstance(key[1], str):
                raise bad_json("initial_state state_key must be a string")
            preset_state[key] = _check_content(item.get("content", {}))
        then.extend((t, k, c) for (t, k), c in preset_state.items())
        for event_type, key_name, field in (
            ("m.room.name", "name", "name"),
            ("m.room.topic", "topic", "topic"),
        ):
            value = body.get(key_name)
            if value is not None:
                if not isinstance(value, str):
                    raise bad_json(f"{key_name} must be a string")
                then.append((event_type, "", {field: value}))
        room_id = await self.rooms.create_room_events(
            version.identifier, user_id, creation_content, visibility == "public", then
        )
        if alias:
            async with self.rooms.db.write() as conn:
                await room_store.insert_alias(conn, alias, room_id, user_id)
        for invitee in invites:
            await self.invite(user_id, room_id, invitee, is_direct=is_direct)
        return room_id, alias

    def _power_levels(
        self,
        version: room_versions.RoomVersion,
        creator: str,
        creators: set[str],
        preset: str,
        invites: list[str],
    ) -> dict[str, Any]:
        users: dict[str, int] = {}
        if not version.creators_have_infinite_power:
            users[creator] = 100
        if preset == "trusted_private_chat":
            for invitee in invites:
                if invitee not in creators:
                    users[invitee] = 100
        events = {
            "m.room.name": 50,
            "m.room.power_levels": 100,
            "m.room.history_visibility": 100,
            "m.room.canonical_alias": 50,
            "m.room.avatar": 50,
            "m.room.tombstone": 100,
            "m.room.server_acl": 100,
            "m.room.encryption": 100,
        }
        if version.creators_have_infinite_power:
            events["m.room.tombstone"] = 150
        return {
            "users": users,
            "users_default": 0,
            "events": events,
            "events_default": 0,
            "state_default": 50,
            "ban": 50,
            "kick": 50,
            "redact": 50,
            "invite": 50 if preset == "public_chat" else 0,
            "notifications": {"room": 50},
        }

    # ------------------------------------------------------------- membership

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
            await self.rooms.send(room_id, user_id, "m.room.member", content, state_key=user_id)
            return room_id
        if self.remote is None:
            raise not_found(f"No known servers for room {room_id}")
        candidates = [*(via or []), *servers, *(await self._invite_servers(room_id, user_id))]
        if room is not None:
            candidates += sorted({domain_of(u) for u, m in room.members.items() if m == "join"})
        if ":" in room_id:
            candidates.append(domain_of(room_id))
        await self.remote.join(user_id, room_id, candidates, content)
        return room_id

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

    async def _reject_remote_invite(self, user_id: str, room_id: str) -> None:
        servers = await self._invite_servers(room_id, user_id)
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
        content = _check_content(content)
        _check_event_shape(event_type, content, is_state=False)
        await self.rooms.require_joined(room_id, user_id)
        # A repeated transaction is answered with its first event by the room's group
        # commit, which looks all of its batch up at once.
        path = f"/rooms/{_quote(room_id)}/send/{_quote(event_type)}"
        txn = (device_id, event_store.txn_key(path, txn_id))
        return await self.rooms.send(room_id, user_id, event_type, content, txn=txn)

    async def send_state(
        self, user_id: str, room_id: str, event_type: str, state_key: str, content: Any
    ) -> str:
        content = _check_content(content)
        room = await self.rooms.require_joined(room_id, user_id)
        if event_type == "m.room.member":
            return await self._member_state(user_id, room, state_key, content)
        _check_event_shape(event_type, content, is_state=True)
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
            _check_event_shape("m.room.member", content, is_state=True)
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
            if alias.endswith(":" + self.server_name):
                async with self.rooms.db.read() as conn:
                    if await room_store.get_alias(conn, alias) != room.room_id:
                        raise MatrixError(
                            400, "M_BAD_ALIAS", f"{alias} does not point to this room"
                        )

    async def _power_state(self, room: RoomCache) -> dict[tuple[str, str], dict[str, Any]]:
        keys = [("m.room.create", ""), ("m.room.power_levels", "")]
        found = await self.rooms.get_events(room.state[k] for k in keys if k in room.state)
        return {
            k: found[room.state[k]].pdu for k in keys if k in room.state and room.state[k] in found
        }

    async def check_state_power(self, user_id: str, room: RoomCache, event_type: str) -> None:
        """Raise 403 unless ``user_id`` could send a state event of ``event_type``."""
        auth_state = await self._power_state(room)
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
            auth_state = await self._power_state(room)
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
        txn = (device_id, event_store.txn_key(path, txn_id))
        return await self.rooms.send(
            room_id, user_id, "m.room.redaction", content, txn=txn, extra=extra
        )


def _quote(part: str) -> str:
    """A path parameter as it would be sent, so that the path names the endpoint exactly."""
    return quote(part, safe="")
