"""Room upgrades (``POST /rooms/{roomId}/upgrade``), as Synapse's
``RoomCreationHandler.upgrade_room`` does them.

The upgrading user needs the power to send ``m.room.tombstone`` in the old room. A new
room of the asked version is created with a ``predecessor`` in its create event, and the
old room's name, topic, avatar, join rules, history visibility, guest access, encryption,
server ACL, power levels (and a space's children) copied, the upgrading user's power raised
for the copy, then its bans. Then the tombstone goes into the old room, the local aliases
move (with the local canonical alias), the room directory entry moves, the local members'
tags and ``m.direct`` entries follow (``carry_over.py``) and so do their push rules for the
room (``homeserver/push/room_rules.py``, as Synapse's ``copy_user_state_on_room_upgrade``),
the old room's power
levels are restricted (``invite`` and ``events_default`` raised to moderator) and the new
room's set to the old room's. Nobody is invited: members follow the tombstone themselves
(Synapse invites only when an admin upgrades, not through the client API).

Room 12 and later (``creators_have_infinite_power``): the upgrading user and the
``additional_creators`` the request names are the new room's creators and are never in its
power levels' ``users``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from federation import room_versions
from federation.errors import UnsupportedRoomVersion
from federation.identifiers import domain_of, is_valid_user_id
from homeserver.common.errors import MatrixError, bad_json, forbidden, not_found
from homeserver.rooms.cache import RoomCache, StateKey
from homeserver.rooms.carry_over import carry_over
from homeserver.rooms.creation import power_levels as default_power
from homeserver.rooms.handler import RoomHandler
from homeserver.rooms.ports import RoomPushRules
from homeserver.storage import rooms as room_store

log = logging.getLogger(__name__)

#: The state copied to the new room, in the order Synapse sends it (power levels first).
COPIED = (
    ("m.room.join_rules", ""),
    ("m.room.history_visibility", ""),
    ("m.room.guest_access", ""),
    ("m.room.name", ""),
    ("m.room.topic", ""),
    ("m.room.avatar", ""),
    ("m.room.encryption", ""),
    ("m.room.server_acl", ""),
)
#: What the private_chat preset (Synapse's for an upgrade) sets when the old room lacks it.
PRESET_DEFAULTS: dict[StateKey, dict[str, Any]] = {
    ("m.room.join_rules", ""): {"join_rule": "invite"},
    ("m.room.history_visibility", ""): {"history_visibility": "shared"},
    ("m.room.guest_access", ""): {"guest_access": "can_join"},
}


def parse_upgrade(body: dict[str, Any]) -> tuple[room_versions.RoomVersion, list[str] | None]:
    """The new room version and the additional creators (``None``: none named, or a
    version without them, where the field is ignored)."""
    if "new_version" not in body:
        raise MatrixError(400, "M_MISSING_PARAM", "Missing new_version")
    version_id = body["new_version"]
    try:
        if not isinstance(version_id, str):
            raise UnsupportedRoomVersion(str(version_id))
        version = room_versions.get(version_id)
    except UnsupportedRoomVersion:
        raise MatrixError(
            400, "M_UNSUPPORTED_ROOM_VERSION", f"Room version {version_id!r} is not supported"
        ) from None
    extra = body.get("additional_creators")
    if extra is None or not version.creators_have_infinite_power:
        return version, None
    if not isinstance(extra, list) or not all(
        isinstance(u, str) and is_valid_user_id(u) for u in extra
    ):
        raise bad_json("additional_creators must be a list of user IDs")
    return version, list(dict.fromkeys(extra))


def _int(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def without_creators(power: Mapping[str, Any], creators: set[str]) -> dict[str, Any]:
    users = power.get("users")
    if not isinstance(users, dict):
        return dict(power)
    return {**power, "users": {u: v for u, v in users.items() if u not in creators}}


def raised_power(power: Mapping[str, Any], user_id: str) -> dict[str, Any]:
    """The old power levels with ``user_id`` raised to what sending every copied event and
    ban needs (as Synapse: the highest of ``state_default``, ``ban`` and ``events``)."""
    content = dict(power)
    events = content.get("events")
    levels = [_int(v, 0) for v in events.values()] if isinstance(events, dict) else []
    needed = max(_int(content.get("state_default"), 50), _int(content.get("ban"), 50), *levels)
    users = dict(content["users"]) if isinstance(content.get("users"), dict) else {}
    current = _int(users.get(user_id, content.get("users_default", 0)), 0)
    if current < needed:
        users[user_id] = needed
    content["users"] = users
    return content


def restricted_power(power: Mapping[str, Any]) -> dict[str, Any] | None:
    """The old room's power levels once upgraded: ``invite`` and ``events_default`` at
    least moderator (above ``users_default``); ``None`` when they already are."""
    content = dict(power)
    level = max(_int(content.get("users_default"), 0) + 1, 50)
    changed = False
    for name in ("invite", "events_default"):
        if _int(content.get(name), 0) < level:
            content[name] = level
            changed = True
    return content if changed else None


class RoomUpgrades:
    def __init__(self, handler: RoomHandler, push_rules: RoomPushRules | None = None) -> None:
        self.handler = handler
        self.push_rules = push_rules
        self.rooms = handler.rooms
        self.server_name = handler.server_name
        #: Upgrades running now, by room: who asked, and the upgrade (the same user asking
        #: again meanwhile gets its answer, another user 400, as Synapse).
        self._running: dict[str, tuple[str, asyncio.Future[str]]] = {}

    async def upgrade(self, user_id: str, room_id: str, body: dict[str, Any]) -> str:
        version, additional = parse_upgrade(body)
        room = await self.rooms.room(room_id)
        if room is None:
            raise not_found(f"Unknown room {room_id}")
        running = self._running.get(room_id)
        if running is not None:
            if running[0] != user_id:
                raise MatrixError(400, "M_UNKNOWN", "An upgrade for this room is in progress")
            return await asyncio.shield(running[1])
        if room.members.get(user_id) != "join":
            raise forbidden("You are not in this room")
        await self.handler.check_state_power(user_id, room, "m.room.tombstone")
        if room_id in self._running:  # another request got there meanwhile
            return await self.upgrade(user_id, room_id, body)
        task = asyncio.ensure_future(self._upgrade(user_id, room, version, additional))
        self._running[room_id] = (user_id, task)
        task.add_done_callback(lambda _: self._running.pop(room_id, None))
        return await asyncio.shield(task)

    async def _upgrade(
        self,
        user_id: str,
        room: RoomCache,
        version: room_versions.RoomVersion,
        additional: list[str] | None,
    ) -> str:
        old_state = dict(await self._state(room))
        create = old_state.get(("m.room.create", ""), {})
        power = old_state.get(("m.room.power_levels", ""))
        async with self.rooms.db.read() as conn:
            stored = await room_store.get_room(conn, room.room_id)
        is_public = stored is not None and stored.is_public
        creators = {user_id, *(additional or [])} if version.creators_have_infinite_power else set()
        # A room without power levels gets the private_chat preset's in the new room.
        new_power = (
            power
            if power is not None
            else default_power(version, user_id, creators or {user_id}, "private_chat", [])
        )

        async def create_new_room(tombstone_id: str | None, new_id: str | None) -> str:
            creation: dict[str, Any] = {"predecessor": {"room_id": room.room_id}}
            if tombstone_id is not None:
                creation["predecessor"]["event_id"] = tombstone_id
            if additional is not None:
                creation["additional_creators"] = additional
            if create.get("m.federate") is False:
                creation["m.federate"] = False
            if "type" in create:
                creation["type"] = create["type"]
            then = self._initial_state(user_id, old_state, new_power, creators)
            return await self.rooms.create_room_events(
                version.identifier, user_id, creation, is_public, then,
                creator_join=await self.handler.profile_content(user_id, "join"),
                room_id=new_id,
            )  # fmt: skip

        tombstone: dict[str, Any] = {"body": "This room has been replaced"}
        if version.room_id_is_create_hash:
            # The new room's ID is its create event's hash: no tombstone ID in it.
            new_room_id = await create_new_room(None, None)
            tombstone["replacement_room"] = new_room_id
            await self.rooms.send(
                room.room_id, user_id, "m.room.tombstone", tombstone, state_key=""
            )
        else:
            new_room_id = self.rooms.new_room_id()
            tombstone["replacement_room"] = new_room_id

            async def before(tombstone_id: str) -> None:
                await create_new_room(tombstone_id, new_room_id)

            await self.rooms.send_after(
                room.room_id, user_id, "m.room.tombstone", tombstone, "", before
            )
        await self._copy_bans(user_id, room, new_room_id)
        await self._move_aliases(user_id, room.room_id, new_room_id, old_state)
        if is_public:
            async with self.rooms.db.write() as conn:
                await room_store.set_room_public(conn, room.room_id, False)
                await room_store.set_room_public(conn, new_room_id, True)
        local = sorted(
            u for u, m in room.members.items() if m == "join" and self.handler.accounts.is_local(u)
        )
        await carry_over(self.rooms.db, self.rooms.notifier, local, room.room_id, new_room_id)
        await self._copy_push_rules(local, room.room_id, new_room_id)
        await self._update_power(user_id, room.room_id, new_room_id, power, new_power, creators)
        return new_room_id

    async def _copy_push_rules(self, users: list[str], old_id: str, new_id: str) -> None:
        if self.push_rules is None:
            return
        for user_id in users:
            try:
                await self.push_rules.copy_room_rules(user_id, old_id, new_id)
            except Exception:  # as Synapse: one user's failure neither stops nor fails it
                log.exception("could not copy the push rules of %s to %s", user_id, new_id)

    async def _state(self, room: RoomCache) -> list[tuple[StateKey, dict[str, Any]]]:
        keys = [k for k in room.state if k in COPIED or k[0] in ("m.room.create",
                "m.room.power_levels", "m.room.canonical_alias", "m.space.child")]  # fmt: skip
        found = await self.rooms.get_events(room.state[k] for k in keys)
        out = []
        for key in keys:
            event = found.get(room.state[key])
            if event is not None:
                content = event.pdu.get("content")
                out.append((key, dict(content) if isinstance(content, dict) else {}))
        return out

    def _initial_state(
        self,
        user_id: str,
        old_state: dict[StateKey, dict[str, Any]],
        power: dict[str, Any],
        creators: set[str],
    ) -> list[tuple[str, str | None, dict[str, Any]]]:
        raised = without_creators(raised_power(power, user_id), creators)
        then: list[tuple[str, str | None, dict[str, Any]]] = [("m.room.power_levels", "", raised)]
        for key in COPIED:
            content = old_state.get(key, PRESET_DEFAULTS.get(key))
            if content is not None:
                then.append((key[0], key[1], content))
        if old_state.get(("m.room.create", ""), {}).get("type") == "m.space":
            for (event_type, state_key), content in sorted(old_state.items()):
                if event_type == "m.space.child" and content:  # empty: a removed child
                    then.append((event_type, state_key, content))
        return then

    async def _copy_bans(self, user_id: str, room: RoomCache, new_room_id: str) -> None:
        banned = sorted(u for u, m in room.members.items() if m == "ban")
        found = await self.rooms.get_events(room.state[("m.room.member", u)] for u in banned)
        for target in banned:
            event = found.get(room.state[("m.room.member", target)])
            content = event.pdu.get("content") if event is not None else None
            if not isinstance(content, dict):
                content = {"membership": "ban"}
            await self.rooms.send(new_room_id, user_id, "m.room.member", dict(content),
                                  state_key=target)  # fmt: skip

    async def _move_aliases(
        self, user_id: str, old_id: str, new_id: str, old_state: dict[StateKey, dict[str, Any]]
    ) -> None:
        async with self.rooms.db.write() as conn:
            await room_store.move_aliases(conn, old_id, new_id)
        canonical = old_state.get(("m.room.canonical_alias", ""))
        if canonical is None:
            return
        old_content = dict(canonical)
        new_content: dict[str, Any] = {}
        alias = canonical.get("alias")
        if isinstance(alias, str) and self._is_mine(alias):
            new_content["alias"] = alias
            old_content.pop("alias", None)
        alt = canonical.get("alt_aliases")
        if isinstance(alt, list) and alt:
            mine = [a for a in alt if isinstance(a, str) and self._is_mine(a)]
            rest = [a for a in alt if a not in mine]
            new_content["alt_aliases"] = mine
            if rest:
                old_content["alt_aliases"] = rest
            else:
                old_content.pop("alt_aliases", None)
        for room_id, content in ((old_id, old_content), (new_id, new_content)):
            try:
                await self.rooms.send(room_id, user_id, "m.room.canonical_alias", content,
                                      state_key="")  # fmt: skip
            except MatrixError as e:  # the new room is there: answer with it regardless
                log.warning("could not update the canonical alias of %s: %s", room_id, e)

    def _is_mine(self, alias: str) -> bool:
        try:
            return domain_of(alias) == self.server_name
        except ValueError:
            return False

    async def _update_power(
        self,
        user_id: str,
        old_id: str,
        new_id: str,
        power: dict[str, Any] | None,
        new_power: dict[str, Any],
        creators: set[str],
    ) -> None:
        """Restrict the old room's power levels (when it has any: as Synapse, none are made
        up), then give the new room its own (the old room's, the upgrader's raise undone)."""
        restricted = restricted_power(power) if power is not None else None
        if restricted is not None:
            try:
                await self.rooms.send(old_id, user_id, "m.room.power_levels", restricted,
                                      state_key="")  # fmt: skip
            except MatrixError as e:
                log.warning("could not restrict the power levels of %s: %s", old_id, e)
        await self.rooms.send(
            new_id, user_id, "m.room.power_levels", without_creators(new_power, creators),
            state_key="",
        )  # fmt: skip
