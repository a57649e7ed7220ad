"""Sending related events over HTTP, for the relations and threads tests."""

from __future__ import annotations

import itertools
from typing import Any
from urllib.parse import quote

from tests.homeserver.client import User

V1 = "/_matrix/client/v1"
V3 = "/_matrix/client/v3"
_txn = itertools.count()


async def send(
    user: User, room_id: str, content: dict[str, Any], event_type: str = "m.room.message"
) -> str:
    path = f"{V3}/rooms/{room_id}/send/{quote(event_type)}/rel{next(_txn)}"
    return str((await user.ok("PUT", path, content))["event_id"])


def relates(rel_type: str, event_id: str) -> dict[str, Any]:
    return {"m.relates_to": {"rel_type": rel_type, "event_id": event_id}}


async def reply_in_thread(user: User, room_id: str, root: str, body: str) -> str:
    content = {"msgtype": "m.text", "body": body, **relates("m.thread", root)}
    return await send(user, room_id, content)


async def edit(user: User, room_id: str, original: str, body: str) -> str:
    content = {
        "msgtype": "m.text",
        "body": f"* {body}",
        "m.new_content": {"msgtype": "m.text", "body": body},
        **relates("m.replace", original),
    }
    return await send(user, room_id, content)


async def react(user: User, room_id: str, target: str, key: str) -> str:
    content = {"m.relates_to": {"rel_type": "m.annotation", "event_id": target, "key": key}}
    return await send(user, room_id, content, "m.reaction")


async def reference(user: User, room_id: str, target: str, body: str) -> str:
    content = {"msgtype": "m.text", "body": body, **relates("m.reference", target)}
    return await send(user, room_id, content)


async def redact(user: User, room_id: str, event_id: str) -> None:
    path = f"{V3}/rooms/{room_id}/redact/{event_id}/red{next(_txn)}"
    await user.ok("PUT", path, {"reason": "test"})


def relations_path(room_id: str, event_id: str, *rest: str) -> str:
    tail = "".join(f"/{quote(part)}" for part in rest)
    return f"{V1}/rooms/{room_id}/relations/{event_id}{tail}"


def ids(events: list[dict[str, Any]]) -> list[str]:
    return [e["event_id"] for e in events]
