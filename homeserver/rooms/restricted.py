"""Restricted join rules: who may join a room through its allow conditions, and which
user authorises the join (spec Client-Server "Restricted rooms", Server-Server
"Restricted rooms", authorization rule 4.3.5).

A room whose join rule is ``restricted`` (rooms 8+) or ``knock_restricted`` (rooms 10+)
lets a user who is not invited join when they are joined to one of the rooms its
``allow`` conditions name. The join event then names, in
``join_authorised_via_users_server``, a user of the server that checked this who is joined
to the room and may invite; that server signs the event. A user who is already invited or
joined needs none of this.

Which rooms count: the conditions are checked against rooms this node is in (a local user
joined), since a room everyone here has left has stale members. A remote joiner found in
none of them, while some allowed room is one this node is not in, cannot be judged here:
400 ``M_UNABLE_TO_AUTHORISE_JOIN`` (another server may know). Otherwise a joiner in none of
them gets 403. A joiner who qualifies but for whom no local user could authorise gets 400
``M_UNABLE_TO_GRANT_JOIN`` (another server should be tried). Synapse's
``synapse/handlers/event_auth.py`` answers the same; of the local users who may invite it
takes any, we take the one with the highest power level (then the first by user ID), so
that the choice is stable and survives small changes of power the longest.
"""

from __future__ import annotations

from typing import Any

from federation import auth as engine_auth
from federation.errors import AuthError
from federation.identifiers import domain_of
from homeserver.common.errors import MatrixError, forbidden
from homeserver.rooms.cache import RoomCache
from homeserver.rooms.reader import RoomReader, joined_at_level

AUTHORISER_KEY = "join_authorised_via_users_server"
UNABLE_TO_AUTHORISE = "M_UNABLE_TO_AUTHORISE_JOIN"
UNABLE_TO_GRANT = "M_UNABLE_TO_GRANT_JOIN"
#: A resident server's answers to /make_join or /send_join that another server may not give.
RESTRICTED_JOIN_ERRORS = (UNABLE_TO_AUTHORISE, UNABLE_TO_GRANT)


def restricted_rule(join_rule: Any, room: RoomCache) -> bool:
    """Whether ``join_rule`` is a restricted one that the room's version knows."""
    return (join_rule == "restricted" and room.version.restricted) or (
        join_rule == "knock_restricted" and room.version.knock_restricted
    )


def allowed_room_ids(join_rules: dict[str, Any]) -> list[str]:
    """The rooms whose members may join a restricted room, in the order the rule names
    them; malformed conditions and other condition types are left out."""
    allow = join_rules.get("allow")
    found = [
        entry["room_id"]
        for entry in (allow if isinstance(allow, list) else [])
        if isinstance(entry, dict)
        and entry.get("type") == "m.room_membership"
        and isinstance(entry.get("room_id"), str)
    ]
    return list(dict.fromkeys(found))


def unable_to_grant(room_id: str) -> MatrixError:
    return MatrixError(
        400, UNABLE_TO_GRANT, f"No user of this server can authorise joining {room_id}"
    )


def server_of(user_id: str) -> str:
    """The server name of a user ID, or "" for a malformed one."""
    try:
        return domain_of(user_id)
    except ValueError:
        return ""


class RestrictedJoins:
    """The one place that decides joins through a restricted rule, for local joiners
    (``/join``), for other servers' (``/make_join``, ``/send_join``) and for the space
    hierarchy's visibility."""

    def __init__(self, rooms: RoomReader, server_name: str) -> None:
        self.rooms = rooms
        self.server_name = server_name

    # ------------------------------------------------------------- the rule

    async def allowed_rooms(self, room: RoomCache) -> list[str]:
        """The rooms the room's restricted rule names; empty when it has no such rule."""
        join_rules = await self.rooms.state_content(room, "m.room.join_rules")
        if not restricted_rule(join_rules.get("join_rule"), room):
            return []
        return allowed_room_ids(join_rules)

    async def applies(self, room: RoomCache, user_id: str) -> bool:
        """Whether a join of ``user_id`` needs an authoriser: the room's rule is restricted
        and the user is neither invited nor joined."""
        if room.members.get(user_id) in ("join", "invite"):
            return False
        join_rules = await self.rooms.state_content(room, "m.room.join_rules")
        return restricted_rule(join_rules.get("join_rule"), room)

    async def resident_room(self, room_id: str) -> RoomCache | None:
        """The room when this node is in it (a local user is joined), else None."""
        room = await self.rooms.room(room_id)
        if room is None or not any(server_of(u) == self.server_name for u in room.joined()):
            return None
        return room

    async def joined_any(self, user_id: str, room_ids: list[str]) -> bool:
        """Whether ``user_id`` is joined to one of ``room_ids`` that this node is in."""
        for room_id in room_ids:
            room = await self.resident_room(room_id)
            if room is not None and room.members.get(user_id) == "join":
                return True
        return False

    async def check_conditions(self, room: RoomCache, user_id: str) -> None:
        """Raise unless ``user_id`` meets one of the room's allow conditions (call only
        when :meth:`applies`): 403, or 400 ``M_UNABLE_TO_AUTHORISE_JOIN`` for a remote
        user when some allowed room is not one this node is in."""
        allowed = await self.allowed_rooms(room)
        if await self.joined_any(user_id, allowed):
            return
        if server_of(user_id) != self.server_name:
            for room_id in allowed:
                if await self.resident_room(room_id) is None:
                    raise MatrixError(
                        400,
                        UNABLE_TO_AUTHORISE,
                        f"Unable to check whether {user_id} is in the rooms that allow"
                        f" joining {room.room_id}",
                    )
        raise forbidden(f"{user_id} is in none of the rooms that allow joining {room.room_id}")

    # ------------------------------------------------------------- the authoriser

    async def inviters(self, room: RoomCache) -> list[str]:
        """The joined users who may invite, highest power level first (then by user ID)."""
        auth_state = await self.rooms.power_state(room)
        try:
            needed = engine_auth.named_level(auth_state, "invite")
        except AuthError:
            return []
        return joined_at_level(room, auth_state, needed)

    async def local_authoriser(self, room: RoomCache) -> str | None:
        """This server's user to name in ``join_authorised_via_users_server``, if any."""
        local = [u for u in await self.inviters(room) if server_of(u) == self.server_name]
        return local[0] if local else None

    async def other_authorising_servers(self, room: RoomCache) -> list[str]:
        """The other servers with a joined user who may invite, to join through when no
        user here may (as Synapse does)."""
        servers = {server_of(u) for u in await self.inviters(room)}
        return sorted(servers - {self.server_name, ""})

    async def may_authorise(self, room: RoomCache, authoriser: str) -> bool:
        """Whether ``authoriser`` is this server's user, joined and able to invite."""
        return server_of(authoriser) == self.server_name and authoriser in await self.inviters(room)

    async def authoriser_for(self, room: RoomCache, user_id: str) -> str | None:
        """For a join of ``user_id`` that this server makes or vouches for: None when no
        authoriser is needed, else the local user who authorises it; raises (403, 400
        ``M_UNABLE_TO_AUTHORISE_JOIN``, 400 ``M_UNABLE_TO_GRANT_JOIN``) when it cannot."""
        if not await self.applies(room, user_id):
            return None
        await self.check_conditions(room, user_id)
        authoriser = await self.local_authoriser(room)
        if authoriser is None:
            raise unable_to_grant(room.room_id)
        return authoriser
