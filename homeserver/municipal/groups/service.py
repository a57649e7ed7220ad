"""Consortium user groups: a space bound to a consortium, with themed rooms its members
join (spec/consortium.md, "User groups").

The admin API calls :meth:`GroupService.create` and :meth:`~GroupService.add_room`
directly; ``kairan group`` hands the same requests to the running node through the
database (:mod:`homeserver.municipal.groups.requests`), because only the node may write
room events (stream positions are allocated in its process).
"""

from __future__ import annotations

import asyncio
from typing import Any

from homeserver.common.clock import Clock
from homeserver.common.errors import MatrixError, invalid_param, not_found
from homeserver.municipal.groups import rules, storage
from homeserver.municipal.groups.rules import GroupError


def group_json(group: storage.Group) -> dict[str, Any]:
    return {
        "space_id": group.space_id,
        "consortium": group.consortium_id,
        "name": group.name,
        "creator": group.creator,
        "created_ts": group.created_ts,
        "rooms": [{"room_id": r, "name": n} for r, n in group.rooms],
    }


class GroupService:
    def __init__(self, db: Any, clock: Clock, consortia: Any, server_name: str) -> None:
        self.db = db
        self.clock = clock
        #: The consortium feature's service (``consortium.service``).
        self.consortia = consortia
        self.server_name = server_name
        #: The running node's NodeApi, from the feature's start.
        self.node: Any = None
        # One group change at a time: room names stay distinct within a group.
        self._lock = asyncio.Lock()

    async def groups(self, space_id: str | None = None) -> list[dict[str, Any]]:
        async with self.db.read() as conn:
            return [group_json(g) for g in await storage.list_groups(conn, space_id)]

    async def create(
        self,
        consortium_id: Any,
        name: Any,
        *,
        topic: Any = None,
        rooms: Any = None,
        creator: Any = None,
    ) -> dict[str, Any]:
        """Make the group's space and themed rooms as ``creator`` (None: the node's oldest
        admin account); its JSON.  Everything is checked before the first room is made."""
        if not isinstance(consortium_id, str):
            raise MatrixError(400, "M_BAD_JSON", "consortium must be a consortium's id")
        try:
            name = rules.check_name(name)
            topic = rules.check_topic(topic)
            names = rules.check_rooms(rooms)
        except GroupError as e:
            raise invalid_param(str(e)) from None
        doc = self._consortium(consortium_id)
        user = await self._creator(creator)
        topic = topic if topic is not None else rules.default_topic(doc.name, doc.id)
        async with self._lock:
            space_id = await self.node.create_room(user, rules.space_body(doc.id, name, topic))
            async with self.db.write() as conn:
                await storage.insert_group(conn, space_id, doc.id, name, user, self.clock.now_ms())
            for room_name in names:
                await self._add_room(space_id, doc.id, user, room_name)
        return (await self.groups(space_id))[0]

    async def add_room(self, space_id: str, name: Any) -> dict[str, Any]:
        """A new themed room in a group this node made, by the group's creator."""
        try:
            name = rules.check_name(name)
        except GroupError as e:
            raise invalid_param(str(e)) from None
        async with self._lock:
            async with self.db.read() as conn:
                found = await storage.list_groups(conn, space_id)
            if not found:
                raise not_found(f"No group {space_id} on this node")
            group = found[0]
            if name in (n for _, n in group.rooms):
                raise invalid_param(f"the group has a room named {name} already")
            room_id = await self._add_room(space_id, group.consortium_id, group.creator, name)
        return {"room_id": room_id, "name": name}

    async def _add_room(self, space_id: str, consortium_id: str, user: str, name: str) -> str:
        body = rules.themed_room_body(consortium_id, space_id, self.server_name, name)
        room_id: str = await self.node.create_room(user, body)
        await self.node.send_event(
            space_id, user, rules.SPACE_CHILD, rules.child_content(self.server_name),
            state_key=room_id,
        )  # fmt: skip
        async with self.db.write() as conn:
            await storage.insert_room(conn, space_id, room_id, name, self.clock.now_ms())
        return room_id

    def _consortium(self, consortium_id: str) -> Any:
        doc = self.consortia.consortium(consortium_id)
        if doc is None:
            raise not_found(f"No consortium {consortium_id} is held by this node")
        if doc.valid_until_ts <= self.clock.now_ms():
            raise invalid_param(f"consortium {consortium_id} has expired")
        if self.server_name not in doc.members:
            raise MatrixError(
                403, "M_FORBIDDEN", f"this node is not a member of consortium {consortium_id}"
            )
        return doc

    async def _creator(self, creator: Any) -> str:
        if creator is None:
            admins = await self.node.server_admins()
            if not admins:
                raise invalid_param("this node has no admin account: name the group's creator")
            return str(admins[0])
        if not isinstance(creator, str) or not self.node.is_local_user(creator):
            raise invalid_param("creator must be a user of this node")
        if not await self.node.user_exists(creator):
            raise invalid_param(f"no active user {creator} on this node")
        return creator
