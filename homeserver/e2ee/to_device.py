"""To-device messages: the shape of a /sendToDevice body, local devices' inboxes, and
what a device's /sync reads from its inbox."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from homeserver.common.errors import bad_json, invalid_param
from homeserver.e2ee import validate
from homeserver.storage import keys as key_store
from homeserver.storage import to_device as store
from homeserver.storage.database import Database

#: (user ID, device ID, content) of one message to put in an inbox.
Target = tuple[str, str, dict[str, Any]]


def checked_messages(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The ``messages`` of a /sendToDevice body: user ID -> device ID (or ``*``) -> content."""
    messages = body.get("messages")
    if not isinstance(messages, dict):
        raise bad_json("'messages' must be an object of user IDs to devices to contents")
    for user_id, per_device in messages.items():
        if not validate.is_user_id(user_id):
            raise invalid_param(f"Invalid user ID {user_id!r}")
        if not isinstance(per_device, dict) or not all(
            isinstance(c, dict) for c in per_device.values()
        ):
            raise bad_json(f"messages.{user_id} must be an object of device IDs to contents")
    return messages


async def local_targets(
    conn: Any, messages: dict[str, dict[str, Any]], is_local: Callable[[str], bool]
) -> list[Target]:
    """The existing local devices the messages go to (``*``: all of the user's devices)."""
    targets: list[Target] = []
    for user_id, per_device in messages.items():
        if not is_local(user_id):
            continue
        existing = set(await key_store.device_ids_of(conn, user_id))
        for device_id, content in per_device.items():
            if device_id == "*":
                targets.extend((user_id, d, content) for d in sorted(existing))
            elif device_id in existing:
                targets.append((user_id, device_id, content))
    return targets


async def store_messages(db: Database, sender: str, event_type: str, targets: list[Target]) -> None:
    """Put the messages in their inboxes, each at its own stream position."""
    with contextlib.ExitStack() as positions:
        async with db.write() as conn:
            for user_id, device_id, content in targets:
                position = positions.enter_context(db.stream.allocate())
                await store.add_to_device(
                    conn, position, user_id, device_id, sender, event_type, content
                )


async def read_inbox(
    db: Database, device: tuple[str, str], since: int | None, upto: int
) -> list[dict[str, Any]]:
    """The device's messages after ``since`` up to ``upto``; those up to ``since`` were
    seen by the client (it syncs from there): they are acknowledged, so deleted."""
    events, _ = await read_inbox_page(db, device, since, upto, None)
    return events


async def read_inbox_page(
    db: Database, device: tuple[str, str], since: int | None, upto: int, limit: int | None
) -> tuple[list[dict[str, Any]], int]:
    """As :func:`read_inbox`, at most ``limit`` messages (None: all), and the position to
    read from next (sliding sync's ``next_batch``: the last message handed out, or
    ``upto`` when all were)."""
    async with db.read() as conn:
        inbox = await store.to_device_messages(conn, *device, upto)
    if since is not None and any(m.stream_id <= since for m in inbox):
        async with db.write() as conn:
            await store.delete_to_device_upto(conn, *device, since)
    new = [m for m in inbox if since is None or m.stream_id > since]
    if limit is not None and len(new) > limit:
        new = new[:limit]
        upto = new[-1].stream_id if new else (since or 0)
    return [{"sender": m.sender, "type": m.type, "content": m.content} for m in new], upto
