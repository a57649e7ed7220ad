"""Local users' memberships of rooms this node is not in: invites from other servers and
their rejection, stored as outliers (no state, no place in the room's graph here)."""

from __future__ import annotations

from typing import Any

from homeserver.common.notifier import Notifier
from homeserver.rooms.reader import RoomReader
from homeserver.storage import events as event_store
from homeserver.storage import rooms as room_store
from homeserver.storage.database import Database

#: In a stored remote knock's ``unsigned``: the server it went through (this node's own
#: field, never sent): a rescinding leave goes there.
KNOCKED_VIA = "io.kairan.knocked_via"


class OutlierMemberships:
    def __init__(self, db: Database, reader: RoomReader, notifier: Notifier) -> None:
        self.db = db
        self.reader = reader
        self.notifier = notifier

    async def store_remote_invite(
        self,
        room_id: str,
        version: str,
        event_id: str,
        pdu: dict[str, Any],
        stripped_state: list[dict[str, Any]],
    ) -> None:
        """An invite of a local user into a room this node is not in (an outlier)."""
        target = pdu["state_key"]
        stored_pdu = {
            **pdu,
            "unsigned": {"invite_room_state": stripped_state, "room_version": version},
        }
        if await self.reader.get_event(event_id) is None:
            await self._store_outlier_membership(
                room_id, target, "invite", event_id, stored_pdu, keep_known=True
            )
        room = self.reader.cached(room_id)
        if room is not None and room.members.get(target) not in ("join",):
            room.members[target] = "invite"
        self.notifier.notify([target])

    async def store_remote_knock(
        self,
        room_id: str,
        version: str,
        event_id: str,
        pdu: dict[str, Any],
        stripped_state: list[dict[str, Any]],
        via: str,
    ) -> None:
        """A local user's knock on a room this node is not in (an outlier), with the
        stripped state the resident server ``via`` answered."""
        target = pdu["state_key"]
        unsigned = {"knock_room_state": stripped_state, "room_version": version, KNOCKED_VIA: via}
        stored_pdu = {**pdu, "unsigned": unsigned}
        await self._store_outlier_membership(room_id, target, "knock", event_id, stored_pdu)
        self.notifier.notify([target])

    async def forget_remote_invite(self, room_id: str, user_id: str) -> None:
        """Mark a remote invite as rejected locally when the inviting server cannot be told."""
        async with self.db.write() as conn:
            membership = await room_store.get_membership(conn, room_id, user_id)
            if membership is None:
                return
            with self.db.stream.allocate() as position:
                await room_store.set_membership(
                    conn, room_id, user_id, "leave", membership.event_id, position
                )
        self.notifier.notify([user_id])

    async def store_remote_leave(
        self, room_id: str, user_id: str, event_id: str, pdu: dict[str, Any]
    ) -> None:
        """A local user's leave (invite rejection) of a room this node is not in."""
        await self._store_outlier_membership(room_id, user_id, "leave", event_id, pdu)
        self.notifier.notify([user_id])

    async def _store_outlier_membership(
        self,
        room_id: str,
        user_id: str,
        membership: str,
        event_id: str,
        pdu: dict[str, Any],
        *,
        keep_known: bool = False,
    ) -> None:
        """Store ``pdu`` as an outlier and make it ``user_id``'s ``membership`` of the room,
        in one transaction.  With ``keep_known``, a membership already stored for a room
        this node is in (its state says what it is) is left as it is."""
        async with self.db.write() as conn:
            with self.db.stream.allocate() as position:
                await event_store.insert_event(
                    conn, stream_ordering=position, event_id=event_id, room_id=room_id,
                    pdu=pdu, state_group=None, outlier=True,
                )  # fmt: skip
                if (
                    not keep_known
                    or (await room_store.get_membership(conn, room_id, user_id)) is None
                    or self.reader.cached(room_id) is None
                ):
                    await room_store.set_membership(
                        conn, room_id, user_id, membership, event_id, position
                    )
