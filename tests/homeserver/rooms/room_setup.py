"""The start the room tests share: users registered on one node, the first with a room."""

from __future__ import annotations

from typing import Any

from tests.homeserver.client import Client, User


async def register(client: Client, *names: str) -> list[User]:
    """Register ``names`` one after another (password: the client's default)."""
    return [await client.register(name) for name in names]


async def users_with_room(client: Client, *names: str, **room: Any) -> tuple[list[User], str]:
    """Register ``names`` one after another, then the first creates a room with ``room``
    (its ``/createRoom`` body) and is its only member; (the users, the room's ID)."""
    users = await register(client, *names)
    return users, await users[0].create_room(**room)
