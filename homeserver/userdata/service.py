"""Per-user data: read receipts and markers, account data, filters."""

from __future__ import annotations

import asyncio
from typing import Any

from homeserver.common.clock import Clock
from homeserver.common.errors import MatrixError, bad_json, not_found
from homeserver.common.notifier import Notifier
from homeserver.rooms.cache import RoomCache
from homeserver.rooms.ignored import IGNORED_USER_LIST
from homeserver.storage import userdata as store
from homeserver.storage.database import Database
from homeserver.userdata.ports import IgnoreListCache, ReadListener, ReceiptListener, Rooms

RECEIPT_TYPES = ("m.read", "m.read.private")
#: Account data types the server manages itself; clients may not set them directly.
SERVER_MANAGED = ("m.fully_read", "m.push_rules")
TAG_TYPE = "m.tag"
#: Tag names are kept to the size of the account data types they live beside.
MAX_TAG_BYTES = 255


def check_tag(tag: str, content: dict[str, Any]) -> None:
    """A tag's name and content as the spec has them (400 ``M_INVALID_PARAM`` otherwise):
    a name of at most 255 bytes, and ``order``, when given, a number."""
    if not tag or len(tag.encode("utf-8")) > MAX_TAG_BYTES:
        raise MatrixError(400, "M_INVALID_PARAM", f"Tag names are 1 to {MAX_TAG_BYTES} bytes")
    order = content.get("order")
    if order is not None and (isinstance(order, bool) or not isinstance(order, int | float)):
        raise MatrixError(400, "M_INVALID_PARAM", "order must be a number")


#: The longest account data type stored (the column holds 255 characters).
MAX_TYPE_CHARS = 255


class UserDataService:
    def __init__(
        self,
        db: Database,
        rooms: Rooms,
        notifier: Notifier,
        clock: Clock,
        *,
        ignored: IgnoreListCache,
        on_read: ReadListener,
        on_receipt: ReceiptListener,
    ) -> None:
        self.db = db
        self.rooms = rooms
        self.notifier = notifier
        self.clock = clock
        self._tag_locks: dict[str, asyncio.Lock] = {}
        #: Called for each public read receipt of a local user (to tell other servers).
        self.on_receipt = on_receipt
        #: Called after each read receipt of a local user: the push actions up to it are read.
        self.on_read = on_read
        #: Told when a user's ignore list changes.
        self.ignored = ignored

    async def set_receipt(
        self,
        user_id: str,
        room_id: str,
        receipt_type: str,
        event_id: str,
        thread_id: str | None = None,
    ) -> None:
        if receipt_type not in RECEIPT_TYPES:
            raise MatrixError(400, "M_INVALID_PARAM", f"Unknown receipt type {receipt_type}")
        room = await self.rooms.require_joined(room_id, user_id)
        event = await self.rooms.get_event(event_id)
        if event is None or event.room_id != room_id:
            raise not_found("Unknown event")
        ts = self.clock.now_ms()
        async with self.db.write() as conn:
            with self.db.stream.allocate() as position:
                await store.upsert_receipt(
                    conn, room_id, receipt_type, user_id, thread_id or "", event_id, ts, position,
                )  # fmt: skip
            # In the receipt's transaction: the counts change with the receipt, at once.
            await self.on_read(conn, room_id, user_id, event.stream_ordering, thread_id or None)
        if receipt_type == "m.read.private":
            self.notifier.notify([user_id])
        else:
            self.notifier.notify(room.interested())
            self.on_receipt(room, user_id, event_id, ts, thread_id)

    async def store_remote_receipt(
        self, room: RoomCache, user_id: str, event_id: str, thread_id: str | None
    ) -> None:
        """An m.read receipt of a remote user, from a federation EDU."""
        async with self.db.write() as conn:
            with self.db.stream.allocate() as position:
                await store.upsert_receipt(
                    conn, room.room_id, "m.read", user_id, thread_id or "", event_id,
                    self.clock.now_ms(), position,
                )  # fmt: skip
        self.notifier.notify(room.interested())

    async def set_read_markers(self, user_id: str, room_id: str, body: dict[str, Any]) -> None:
        fully_read = body.get("m.fully_read")
        if fully_read is not None:
            if not isinstance(fully_read, str):
                raise bad_json("m.fully_read must be an event ID")
            await self.rooms.require_joined(room_id, user_id)
            if await self.rooms.get_event(fully_read) is None:
                raise not_found("Unknown event")
            await self._put_account_data(user_id, room_id, "m.fully_read", {"event_id": fully_read})
        for receipt_type in RECEIPT_TYPES:
            event_id = body.get(receipt_type)
            if event_id is not None:
                if not isinstance(event_id, str):
                    raise bad_json(f"{receipt_type} must be an event ID")
                await self.set_receipt(user_id, room_id, receipt_type, event_id)

    # ------------------------------------------------------------- account data

    async def put_account_data(
        self, user_id: str, room_id: str, data_type: str, content: dict[str, Any]
    ) -> None:
        if len(data_type) > MAX_TYPE_CHARS:
            raise MatrixError(
                400,
                "M_INVALID_PARAM",
                f"Account data types are at most {MAX_TYPE_CHARS} characters",
            )
        if data_type in SERVER_MANAGED:
            raise MatrixError(
                400, "M_BAD_JSON", f"Cannot set {data_type} through the account data API"
            )
        if room_id:
            room = await self.rooms.room(room_id)
            if room is None or room.members.get(user_id) is None:
                raise MatrixError(403, "M_FORBIDDEN", "Not a member of the room")
        await self._put_account_data(user_id, room_id, data_type, content)

    async def _put_account_data(
        self, user_id: str, room_id: str, data_type: str, content: dict[str, Any]
    ) -> None:
        async with self.db.write() as conn:
            with self.db.stream.allocate() as position:
                await store.put_account_data(conn, user_id, room_id, data_type, content, position)
        if not room_id and data_type == IGNORED_USER_LIST:
            self.ignored.changed(user_id, content)
        self.notifier.notify([user_id])

    async def get_account_data(self, user_id: str, room_id: str, data_type: str) -> dict[str, Any]:
        async with self.db.read() as conn:
            content = await store.get_account_data(conn, user_id, room_id, data_type)
        if content is None:
            raise not_found("Account data not found")
        return content

    # ------------------------------------------------------------- tags

    async def tags(self, user_id: str, room_id: str) -> dict[str, Any]:
        """The user's tags of a room (the ``tags`` of its ``m.tag`` account data)."""
        async with self.db.read() as conn:
            content = await store.get_account_data(conn, user_id, room_id, TAG_TYPE)
        tags = (content or {}).get("tags")
        return dict(tags) if isinstance(tags, dict) else {}

    async def set_tag(
        self, user_id: str, room_id: str, tag: str, content: dict[str, Any] | None
    ) -> None:
        """Add or change (``content``) or remove (None) one tag of a room.  The tags live in
        the room's ``m.tag`` account data, where /sync gives them to clients."""
        if content is not None:
            check_tag(tag, content)
        async with self._tag_lock(user_id):
            tags = await self.tags(user_id, room_id)
            if content is None:
                if tag not in tags:
                    return  # as Synapse: removing an absent tag is fine
                del tags[tag]
            else:
                tags[tag] = content
            room = await self.rooms.room(room_id)
            if room is None or room.members.get(user_id) is None:
                raise MatrixError(403, "M_FORBIDDEN", "Not a member of the room")
            await self._put_account_data(user_id, room_id, TAG_TYPE, {"tags": tags})

    def _tag_lock(self, user_id: str) -> asyncio.Lock:
        """One change of a user's tags at a time (each rewrites the whole ``m.tag``)."""
        lock = self._tag_locks.get(user_id)
        if lock is None:
            if len(self._tag_locks) > 10_000:
                self._tag_locks = {u: v for u, v in self._tag_locks.items() if v.locked()}
            lock = self._tag_locks[user_id] = asyncio.Lock()
        return lock

    # ------------------------------------------------------------- filters

    async def create_filter(self, user_id: str, body: dict[str, Any]) -> str:
        validate_filter(body)
        async with self.db.write() as conn:
            return str(await store.insert_filter(conn, user_id, body))

    async def get_filter(self, user_id: str, filter_id: str) -> dict[str, Any]:
        if not (filter_id.isascii() and filter_id.isdigit() and len(filter_id) <= 18):
            raise not_found("Unknown filter")
        async with self.db.read() as conn:
            found = await store.get_filter(conn, user_id, int(filter_id))
        if found is None:
            raise not_found("Unknown filter")
        return found


def validate_filter(body: Any) -> None:
    """Check the shape of a filter definition enough that using it cannot fail later."""
    if not isinstance(body, dict):
        raise bad_json("A filter must be a JSON object")

    def check_event_filter(value: Any, where: str) -> None:
        if value is None:
            return
        if not isinstance(value, dict):
            raise bad_json(f"{where} must be an object")
        for key in ("types", "not_types", "senders", "not_senders", "rooms", "not_rooms"):
            items = value.get(key)
            if items is not None and (
                not isinstance(items, list) or not all(isinstance(i, str) for i in items)
            ):
                raise bad_json(f"{where}.{key} must be a list of strings")
        limit = value.get("limit")
        if limit is not None and (
            not isinstance(limit, int) or isinstance(limit, bool) or limit < 0
        ):
            raise bad_json(f"{where}.limit must be a non-negative integer")

    for key in ("presence", "account_data"):
        check_event_filter(body.get(key), key)
    room = body.get("room")
    if room is not None:
        check_event_filter(room, "room")
        for key in ("timeline", "state", "ephemeral", "account_data"):
            check_event_filter(room.get(key), f"room.{key}")
    fmt = body.get("event_format")
    if fmt is not None and fmt not in ("client", "federation"):
        raise bad_json("event_format must be 'client' or 'federation'")
