"""Summaries of the rooms this node is in, for the space hierarchy (spec "Spaces" module).

A summary is the spec's room summary (``RoomSummary``: name, topic, alias, avatar, joined
members, join rule, room type...) of a room's current state, and a space's children are
its ``m.space.child`` state events with a valid ``via``, stripped and ordered as the spec
says. Who may see a room: anyone when its join rule is public, knock or knock_restricted,
or its history is world-readable; otherwise a user who is joined or invited, or who is
joined to one of the rooms a restricted join rule names; a server likewise when one of its
users is joined or invited, or joined to one of those rooms. Synapse's
``synapse/handlers/room_summary.py`` is the model for what is answered.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from federation.identifiers import domain_of
from homeserver.common.errors import not_found
from homeserver.rooms.cache import RoomCache
from homeserver.rooms.restricted import RestrictedJoins, allowed_room_ids, restricted_rule
from homeserver.rooms.service import RoomService
from homeserver.storage import rooms as room_store

log = logging.getLogger(__name__)

SPACE = "m.space"
#: At most this many children are summarised in one federation answer (as Synapse).
MAX_CHILDREN_PER_SPACE = 50
#: An ``order`` is valid when it is at most 50 characters from \x20 to \x7E.
_ORDER = re.compile(r"[\x20-\x7E]{0,50}")

#: Whether a server is denied by a room's server ACL (the federation handler's check).
AclCheck = Callable[[RoomCache, str], Awaitable[bool]]


def valid_via(content: Any) -> bool:
    """A child link counts only with a non-empty ``via`` list of strings (no ``via``:
    removed, e.g. redacted)."""
    via = content.get("via") if isinstance(content, dict) else None
    return isinstance(via, list) and bool(via) and all(isinstance(v, str) for v in via)


def is_suggested(child: dict[str, Any]) -> bool:
    content = child.get("content")
    return isinstance(content, dict) and content.get("suggested") is True


def child_order_key(child: dict[str, Any]) -> tuple[bool, str, int, str]:
    """The spec's order of a space's children: a valid ``order`` first, by code points;
    then the ``origin_server_ts`` of the ``m.space.child`` event; then the room ID."""
    content = child.get("content")
    order = content.get("order") if isinstance(content, dict) else None
    if not isinstance(order, str) or not _ORDER.fullmatch(order):
        order = None
    ts = child.get("origin_server_ts")
    return (
        order is None,
        order or "",
        ts if isinstance(ts, int) and not isinstance(ts, bool) else 0,
        str(child.get("state_key", "")),
    )


def strip_child(pdu: dict[str, Any]) -> dict[str, Any]:
    """A stripped state event with its ``origin_server_ts``, as ``children_state`` holds."""
    keys = ("type", "state_key", "content", "sender", "origin_server_ts")
    return {k: pdu[k] for k in keys if k in pdu}


class RoomSummaries:
    def __init__(self, rooms: RoomService) -> None:
        self.rooms = rooms
        self.server_name = rooms.server_name
        self.restricted = RestrictedJoins(rooms.reader, rooms.server_name)

    # ------------------------------------------------------------- what is known here

    async def local_room(self, room_id: str) -> RoomCache | None:
        """The room when this node is in it (a local user is joined), else None: the
        state of a room everyone here has left is stale."""
        return await self.restricted.resident_room(room_id)

    async def summary(self, room: RoomCache) -> dict[str, Any]:
        """The spec's room summary of the room's current state, with ``allowed_room_ids``
        (which the client API leaves out, as Synapse does)."""
        content = self.rooms.state_content
        join_rules = await content(room, "m.room.join_rules")
        join_rule = join_rules.get("join_rule")
        entry: dict[str, Any] = {
            "room_id": room.room_id,
            "room_version": room.version.identifier,
            "num_joined_members": len(room.joined()),
            "world_readable": (await content(room, "m.room.history_visibility")).get(
                "history_visibility"
            )
            == "world_readable",
            "guest_can_join": (await content(room, "m.room.guest_access")).get("guest_access")
            == "can_join",
        }
        for key, event_type, field in (
            ("name", "m.room.name", "name"),
            ("topic", "m.room.topic", "topic"),
            ("canonical_alias", "m.room.canonical_alias", "alias"),
            ("avatar_url", "m.room.avatar", "url"),
            ("room_type", "m.room.create", "type"),
            ("encryption", "m.room.encryption", "algorithm"),
        ):
            value = (await content(room, event_type)).get(field)
            if isinstance(value, str) and value:
                entry[key] = value
        if isinstance(join_rule, str):
            entry["join_rule"] = join_rule
        if restricted_rule(join_rule, room):
            allowed = allowed_room_ids(join_rules)
            if allowed:
                entry["allowed_room_ids"] = allowed
        return entry

    async def children(self, room: RoomCache, suggested_only: bool) -> list[dict[str, Any]]:
        """The space's ``m.space.child`` events with a valid ``via``, stripped, in order."""
        ids = [e for (t, _), e in room.state.items() if t == "m.space.child"]
        found = await self.rooms.get_events(ids)
        children = [
            strip_child(event.pdu)
            for event in found.values()
            if valid_via(event.pdu.get("content"))
            and str(event.pdu.get("state_key", "")).startswith("!")
        ]
        if suggested_only:
            children = [c for c in children if is_suggested(c)]
        return sorted(children, key=child_order_key)

    async def is_space(self, room: RoomCache) -> bool:
        return (await self.rooms.state_content(room, "m.room.create")).get("type") == SPACE

    # ------------------------------------------------------------- who may see it

    async def _open(self, room: RoomCache) -> bool:
        """Public, knockable or world-readable: anyone may see it."""
        join_rule = (await self.rooms.state_content(room, "m.room.join_rules")).get("join_rule")
        if (
            join_rule == "public"
            or (join_rule == "knock" and room.version.knock)
            or (join_rule == "knock_restricted" and room.version.knock_restricted)
        ):
            return True
        visibility = await self.rooms.state_content(room, "m.room.history_visibility")
        return visibility.get("history_visibility") == "world_readable"

    async def _allowed_rooms(self, room: RoomCache) -> list[str]:
        return await self.restricted.allowed_rooms(room)

    async def user_joined_any(self, user_id: str, room_ids: list[str]) -> bool:
        return await self.restricted.joined_any(user_id, room_ids)

    async def visible_to_user(self, room_id: str, user_id: str) -> bool:
        room = await self.rooms.room(room_id)
        if room is None:
            # Not known here, but the user may hold an invite to it (from another server).
            async with self.rooms.db.read() as conn:
                membership = await room_store.get_membership(conn, room_id, user_id)
            return membership is not None and membership.membership == "invite"
        if await self._open(room) or room.members.get(user_id) in ("join", "invite"):
            return True
        return await self.user_joined_any(user_id, await self._allowed_rooms(room))

    async def visible_to_server(self, room: RoomCache, origin: str) -> bool:
        if await self._open(room):
            return True
        if any(
            membership in ("join", "invite") and _domain(user) == origin
            for user, membership in room.members.items()
        ):
            return True
        for allowed_id in await self._allowed_rooms(room):
            allowed = await self.rooms.room(allowed_id)
            if allowed is not None and any(_domain(u) == origin for u in allowed.joined()):
                return True
        return False

    # ------------------------------------------------------------- federation

    async def for_server(
        self, origin: str, room_id: str, suggested_only: bool, acl_denies: AclCheck
    ) -> dict[str, Any]:
        """The federation ``/hierarchy`` answer: the room with its children's events, a
        summary of each child this node is in and ``origin`` may see, and the children it
        may not see; children this node is not in are left out (the requesting server asks
        their own servers). Not recursive."""
        room = await self.local_room(room_id)
        if room is None or not await self.visible_to_server(room, origin):
            raise not_found(f"Unknown room {room_id}")
        is_space = await self.is_space(room)
        children_state = await self.children(room, suggested_only) if is_space else []
        children: list[dict[str, Any]] = []
        inaccessible: list[str] = []
        for child in children_state[:MAX_CHILDREN_PER_SPACE]:
            child_room = await self.local_room(child["state_key"])
            if child_room is None:
                continue
            if await acl_denies(child_room, origin) or not await self.visible_to_server(
                child_room, origin
            ):
                inaccessible.append(child_room.room_id)
            else:
                children.append(await self.summary(child_room))
        return {
            "room": {**await self.summary(room), "children_state": children_state},
            "children": children,
            "inaccessible_children": inaccessible,
        }


def _domain(user_id: str) -> str:
    try:
        return domain_of(user_id)
    except ValueError:
        return ""
