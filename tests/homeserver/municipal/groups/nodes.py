"""Test nodes with the consortium and groups features, holding one consortium."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from homeserver.config.listeners import FeatureSettings
from tests.homeserver.client import User
from tests.homeserver.conftest import Node
from tests.homeserver.municipal.consortium.nodes import document_for, service_of

V1 = "/_matrix/client/v1"
V3 = "/_matrix/client/v3"
GROUPS = "/_kairan/admin/v1/groups"


def features(*, closed: bool = True) -> tuple[FeatureSettings, ...]:
    return (
        FeatureSettings("consortium", {"poll_seconds": 0.2, "closed": closed}),
        FeatureSettings("groups", {"poll_seconds": 0.1}),
    )


async def hold_consortium(members: list[Node], holders: list[Node]) -> dict[str, Any]:
    """Consortium "kanto" naming ``members``, in force on each of ``holders``."""
    doc = document_for(members)
    for node in holders:
        await service_of(node).apply(doc, "test")
    return doc


async def admin(node: Node, user: User) -> User:
    await node.services.accounts.set_admin(user.user_id, True)
    return user


def q(room_id: str) -> str:
    return quote(room_id, safe="")


async def join(user: User, room_id: str, server: str) -> tuple[int, Any]:
    response = await user.request(
        "POST", f"{V3}/join/{q(room_id)}", {}, params={"server_name": server}
    )
    return response.status, response.body


async def state(user: User, room_id: str, event_type: str, key: str = "") -> Any:
    return await user.ok("GET", f"{V3}/rooms/{q(room_id)}/state/{event_type}/{q(key)}")


async def hierarchy(user: User, room_id: str) -> dict[str, dict[str, Any]]:
    """The space's hierarchy as room ID -> entry."""
    body = await user.ok("GET", f"{V1}/rooms/{q(room_id)}/hierarchy")
    return {room["room_id"]: room for room in body["rooms"]}


async def public_rooms(user: User) -> dict[str, dict[str, Any]]:
    body = await user.ok("GET", f"{V3}/publicRooms")
    return {room["room_id"]: room for room in body["chunk"]}
