"""Rooms bound to a consortium: the node keeps their server ACL equal to the membership.

When a room's binding (``jp.kairan.consortium``) is persisted, local or received, and each
time a new version of a consortium comes into force, the node looks at each room bound to
it; when the room's ``m.room.server_acl`` does not do what the membership calls for
(:func:`acl.wanted_acl`) and one of the node's joined users has the power to send it, it
sends it as that user (the most powerful of them).  Several member nodes may all do so:
each sends only when the current ACL differs, the node whose user has the highest power
in the room at once and the others after ``acl_delay_seconds`` (when the ACL is usually
right already), so a change costs one ACL event, rarely a few identical ones, and never a
storm.  It never reacts to ACL events themselves.  Unbinding leaves the ACL as it is; a
binding to a consortium the node does not hold, or to an expired one, leaves it alone
(logged).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from homeserver.municipal.consortium import acl
from homeserver.municipal.consortium.document import Document
from homeserver.municipal.consortium.service import ConsortiumService

log = logging.getLogger(__name__)


class RoomBinding:
    def __init__(self, service: ConsortiumService, settings: Mapping[str, Any]) -> None:
        self.service = service
        self.delay_s = float(settings.get("acl_delay_seconds", 5))
        if self.delay_s < 0:
            raise ValueError("acl_delay_seconds must not be negative")
        self.node: Any = None
        self._running: dict[str, asyncio.Task[None]] = {}
        #: Rooms to look at again once the task running for them ends.
        self._again: set[str] = set()
        #: Tasks finding the rooms bound to a consortium that has a new version.
        self._finding: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------- lifecycle

    async def start(self, node: Any) -> None:
        """After the consortium documents are loaded: look at every bound room (a
        document may have changed while the node was down)."""
        self.node = node
        self.service.on_applied(self._applied)
        for room_id in await node.rooms_with_state(acl.BINDING):
            self.schedule(room_id)

    async def stop(self) -> None:
        self.node = None  # nothing more is scheduled
        tasks = [*self._finding, *self._running.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # ------------------------------------------------------------- what starts a look

    def on_event(self, room_id: str, event_id: str, pdu: Mapping[str, Any]) -> None:
        """Event listener: a binding persisted (local or received)."""
        if pdu.get("type") == acl.BINDING and pdu.get("state_key") == "":
            self.schedule(room_id)

    def _applied(self, doc: Document, previous: Document | None) -> None:
        if self.node is not None:
            task = asyncio.create_task(self._rooms_of(doc.id))
            self._finding.add(task)
            task.add_done_callback(self._finding.discard)

    async def _rooms_of(self, consortium_id: str) -> None:
        if self.node is None:
            return
        for room_id in await self.node.rooms_with_state(acl.BINDING):
            if await self.bound_id(room_id) == consortium_id:
                self.schedule(room_id)

    def schedule(self, room_id: str) -> None:
        """Look at a room's ACL soon; one look at a time per room (another request
        while one runs makes it look again afterwards)."""
        if self.node is None:
            return
        if room_id in self._running:
            self._again.add(room_id)
            return
        task = asyncio.create_task(self._look(room_id), name=f"consortium-acl {room_id}")
        self._running[room_id] = task
        task.add_done_callback(lambda _: self._done(room_id))

    def _done(self, room_id: str) -> None:
        self._running.pop(room_id, None)
        if room_id in self._again:
            self._again.discard(room_id)
            self.schedule(room_id)

    # ------------------------------------------------------------- the room's ACL

    async def bound_id(self, room_id: str) -> str | None:
        """The consortium the room is bound to (None: unbound, or the node not started)."""
        if self.node is None:
            return None
        return acl.bound_id(await self.node.state_content(room_id, acl.BINDING))

    async def bound_document(self, room_id: str) -> Document | None:
        """The version in force of the consortium the room is bound to, if held."""
        consortium_id = await self.bound_id(room_id)
        return None if consortium_id is None else self.service.consortium(consortium_id)

    async def _look(self, room_id: str) -> None:
        try:
            wanted = await self._wanted(room_id)
            if wanted is None:
                return
            sender, first = await self._sender(room_id)
            if sender is None:
                return
            if not first and self.delay_s:
                # Another server's user has more power: its node probably sends it.
                await asyncio.sleep(self.delay_s)
                wanted = await self._wanted(room_id)
                sender, _ = await self._sender(room_id)
                if wanted is None or sender is None:
                    return
            await self.node.send_event(room_id, sender, acl.ACL, wanted, state_key="")
            log.info(
                "room %s: server ACL set to the members of consortium %s (version %d) as %s",
                room_id, wanted[acl.BINDING]["id"], wanted[acl.BINDING]["version"], sender,
            )  # fmt: skip
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("could not set the server ACL of %s", room_id)

    async def _wanted(self, room_id: str) -> dict[str, Any] | None:
        """The ACL to send, or None when the current one is right or is not ours to set."""
        consortium_id = await self.bound_id(room_id)
        if consortium_id is None:
            return None
        doc = self.service.consortium(consortium_id)
        if doc is None:
            log.warning(
                "room %s is bound to consortium %s, which this node does not hold: "
                "its server ACL is left alone", room_id, consortium_id,
            )  # fmt: skip
            return None
        if doc.valid_until_ts <= self.service.clock.now_ms():
            log.warning(
                "room %s is bound to consortium %s, whose version %d has expired: "
                "its server ACL is left alone", room_id, doc.id, doc.version,
            )  # fmt: skip
            return None
        wanted = acl.wanted_acl(doc, self.service.server_name)
        current = await self.node.state_content(room_id, acl.ACL)
        if acl.same_effect(current, wanted) or acl.recorded_newer(current, doc):
            return None
        return wanted

    async def _sender(self, room_id: str) -> tuple[str | None, bool]:
        """This node's joined user with the most power to send the ACL (None: none may),
        and whether no other server's user has more."""
        able = await self.node.joined_with_power(room_id, acl.ACL)
        local = [u for u in able if self.node.is_local_user(u)]
        if not local:
            return None, False
        return local[0], able[0] == local[0]
