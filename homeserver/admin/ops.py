"""Administrative operations shared by the ``kairan`` command and the admin HTTP API."""

from __future__ import annotations

from typing import Any

from homeserver.errors import MatrixError, not_found
from homeserver.services import Services
from homeserver.storage import accounts as account_store
from homeserver.storage import rooms as room_store


async def add_user(
    svc: Services,
    localpart: str,
    password: str,
    *,
    admin: bool = False,
    displayname: str | None = None,
) -> str:
    return await svc.accounts.create_user(localpart, password, admin=admin, displayname=displayname)


async def list_users(svc: Services, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
    async with svc.db.read() as conn:
        users = await account_store.list_users(conn, limit, offset)
    return [
        {
            "user_id": u.user_id,
            "displayname": u.displayname,
            "admin": u.is_admin,
            "deactivated": u.deactivated,
            "creation_ts": u.created_ts,
        }
        for u in users
    ]


async def require_local_user(svc: Services, user_id: str) -> None:
    if not svc.accounts.is_local(user_id):
        raise MatrixError(400, "M_INVALID_PARAM", f"{user_id} is not a user of this server")
    if await svc.accounts.get_user(user_id) is None:
        raise not_found(f"Unknown user {user_id}")


async def deactivate_user(svc: Services, user_id: str) -> None:
    await require_local_user(svc, user_id)
    async with svc.db.read() as conn:
        joined = await room_store.memberships_of_user(conn, user_id, ["join", "invite"])
    for membership in joined:
        try:
            await svc.handler.leave(user_id, membership.room_id, None)
        except MatrixError:
            continue
    await svc.accounts.deactivate(user_id)


async def reset_password(svc: Services, user_id: str, password: str) -> None:
    await require_local_user(svc, user_id)
    await svc.accounts.set_password(user_id, password, logout_devices=True, keep_device=None)


async def list_rooms(svc: Services) -> list[dict[str, Any]]:
    async with svc.db.read() as conn:
        rooms = await room_store.list_rooms(conn)
    result = []
    for room in rooms:
        cache = await svc.rooms.room(room.room_id)
        name = (await svc.rooms.state_content(cache, "m.room.name")).get("name") if cache else None
        result.append(
            {
                "room_id": room.room_id,
                "name": name,
                "room_version": room.room_version,
                "creator": room.creator,
                "public": room.is_public,
                "joined_members": len(cache.joined()) if cache else 0,
            }
        )
    return result


async def room_details(svc: Services, room_id: str) -> dict[str, Any]:
    cache = await svc.rooms.room(room_id)
    if cache is None:
        raise not_found(f"Unknown room {room_id}")
    state = await svc.rooms.current_state_events(room_id)
    return {
        "room_id": room_id,
        "room_version": cache.version.identifier,
        "members": dict(sorted(cache.members.items())),
        "forward_extremities": list(cache.extremities),
        "depth": cache.depth,
        "state": [
            {
                "type": e.type,
                "state_key": e.state_key,
                "event_id": e.event_id,
                "content": e.pdu.get("content"),
            }
            for e in sorted(state, key=lambda e: (e.type, e.state_key or ""))
        ],
    }
