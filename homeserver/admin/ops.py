"""Administrative operations shared by the ``kairan`` command and the admin HTTP API."""

from __future__ import annotations

import secrets
import string
from typing import Any

from homeserver.common.errors import MatrixError, not_found
from homeserver.node.services import Services
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
    svc.accounts.check_new_password(password)
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
    svc.accounts.check_new_password(password)
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


# ---------------------------------------------------------------------- users


def user_json(user: account_store.User) -> dict[str, Any]:
    return {
        "user_id": user.user_id,
        "displayname": user.displayname,
        "avatar_url": user.avatar_url,
        "admin": user.is_admin,
        "deactivated": user.deactivated,
        "has_password": user.password_hash is not None,
        "creation_ts": user.created_ts,
    }


async def find_users(
    svc: Services,
    offset: int,
    limit: int,
    *,
    name: str | None = None,
    include_deactivated: bool = True,
) -> tuple[list[dict[str, Any]], int]:
    """A page of accounts whose ID or display name contains ``name``, and how many match."""
    if name is None and include_deactivated:
        async with svc.db.read() as conn:
            page = await account_store.list_users(conn, limit, offset)
            total = await account_store.count_users(conn)
        return [user_json(u) for u in page], total
    async with svc.db.read() as conn:
        everyone = await account_store.list_users(conn, 10**9, 0)
    term = (name or "").casefold()
    matching = [
        user_json(u)
        for u in everyone
        if (include_deactivated or not u.deactivated)
        and (term in u.user_id.casefold() or term in (u.displayname or "").casefold())
    ]
    return matching[offset : offset + limit], len(matching)


async def count_users(svc: Services) -> int:
    async with svc.db.read() as conn:
        return await account_store.count_users(conn)


async def get_user(svc: Services, user_id: str) -> dict[str, Any]:
    await require_local_user(svc, user_id)
    user = await svc.accounts.get_user(user_id)
    assert user is not None
    return user_json(user)


def _localpart(svc: Services, user_id: str) -> str:
    if not user_id.startswith("@") or not svc.accounts.is_local(user_id):
        raise MatrixError(400, "M_INVALID_PARAM", f"{user_id} is not a user of this server")
    return user_id[1 : -len(svc.config.server_name) - 1]


async def modify_user(
    svc: Services,
    user_id: str,
    *,
    password: str | None = None,
    displayname: str | None = None,
    admin: bool | None = None,
    deactivated: bool | None = None,
    logout_devices: bool = True,
) -> bool:
    """Create ``user_id`` or change it; True when the account was created."""
    localpart = _localpart(svc, user_id)
    existing = await svc.accounts.get_user(user_id)
    if existing is None:
        if deactivated:
            raise MatrixError(400, "M_INVALID_PARAM", "Cannot create a deactivated account")
        await svc.accounts.create_user(
            localpart, password, admin=bool(admin), displayname=displayname
        )
        return True
    if deactivated is False and existing.deactivated:
        if password is None:
            raise MatrixError(
                400, "M_MISSING_PARAM", "Reactivating an account needs a new password"
            )
        async with svc.db.write() as conn:
            await account_store.update_user(conn, user_id, deactivated=False)
    elif existing.deactivated and (password is not None or displayname is not None):
        raise MatrixError(400, "M_INVALID_PARAM", "The account is deactivated; reactivate it first")
    if password is not None and not deactivated:
        await svc.accounts.set_password(
            user_id, password, logout_devices=logout_devices, keep_device=None
        )
    if admin is not None and admin != existing.is_admin:
        await svc.accounts.set_admin(user_id, admin)
    if displayname is not None and not deactivated:
        await svc.directory.set_profile_field(user_id, "displayname", displayname)
    if deactivated and not existing.deactivated:
        await deactivate_user(svc, user_id)
    return False


async def list_devices(svc: Services, user_id: str) -> list[dict[str, Any]]:
    await require_local_user(svc, user_id)
    async with svc.db.read() as conn:
        devices = await account_store.get_devices(conn, user_id)
    return [
        {
            "device_id": d.device_id,
            "display_name": d.display_name,
            "last_seen_ts": d.last_seen_ts,
            "last_seen_ip": d.last_seen_ip,
            "user_id": d.user_id,
        }
        for d in devices
    ]


async def delete_device(svc: Services, user_id: str, device_id: str) -> None:
    """Log the device out (its access tokens go with it)."""
    await require_local_user(svc, user_id)
    await svc.accounts.delete_device(user_id, device_id)


# ---------------------------------------------------------------------- rooms


async def shutdown_room(svc: Services, room_id: str) -> dict[str, Any]:
    """Close the room to new joins, make every local member leave (invites are rejected),
    and unpublish it.

    The join rule becomes ``invite``, set by the first local member with the power to set
    it (``closed`` says whether one could); remote servers' members are not touched.
    """
    cache = await svc.rooms.room(room_id)
    if cache is None:
        raise not_found(f"Unknown room {room_id}")
    closed = False
    for user_id in sorted(cache.joined()):
        if not svc.accounts.is_local(user_id):
            continue
        try:
            await svc.handler.send_state(
                user_id, room_id, "m.room.join_rules", "", {"join_rule": "invite"}
            )
        except MatrixError:
            continue
        closed = True
        break
    left: list[str] = []
    failed: list[str] = []
    for user_id, membership in sorted(cache.members.items()):
        if membership not in ("join", "invite", "knock") or not svc.accounts.is_local(user_id):
            continue
        try:
            await svc.handler.leave(user_id, room_id, "This room has been shut down")
            left.append(user_id)
        except MatrixError:
            failed.append(user_id)
    async with svc.db.write() as conn:
        await room_store.set_room_public(conn, room_id, False)
    return {"kicked_users": left, "failed_to_kick_users": failed, "closed": closed}


# ---------------------------------------------------------------------- registration tokens

TOKEN_CHARS = string.ascii_letters + string.digits + "._~-"
MAX_TOKEN_LENGTH = 64


def token_json(token: account_store.RegistrationToken) -> dict[str, Any]:
    return {
        "token": token.token,
        "uses_allowed": token.uses_allowed,
        "pending": token.pending,
        "completed": token.completed,
        "expiry_time": token.expiry_time,
    }


def _token_valid(token: account_store.RegistrationToken, now_ms: int) -> bool:
    return (token.uses_allowed is None or token.completed < token.uses_allowed) and (
        token.expiry_time is None or token.expiry_time >= now_ms
    )


def _check_limits(svc: Services, uses_allowed: int | None, expiry_time: int | None) -> None:
    # The columns are a 32-bit and a 64-bit integer.
    if uses_allowed is not None and not 0 <= uses_allowed < 2**31:
        raise MatrixError(400, "M_INVALID_PARAM", "uses_allowed must be between 0 and 2^31-1")
    if expiry_time is not None and expiry_time < svc.clock.now_ms():
        raise MatrixError(400, "M_INVALID_PARAM", "expiry_time must not be in the past")
    if expiry_time is not None and expiry_time >= 2**63:
        raise MatrixError(400, "M_INVALID_PARAM", "expiry_time must be below 2^63")


async def list_registration_tokens(
    svc: Services, valid: bool | None = None
) -> list[dict[str, Any]]:
    async with svc.db.read() as conn:
        tokens = await account_store.list_registration_tokens(conn)
    now = svc.clock.now_ms()
    return [token_json(t) for t in tokens if valid is None or _token_valid(t, now) == valid]


async def get_registration_token(svc: Services, token: str) -> dict[str, Any]:
    async with svc.db.read() as conn:
        found = await account_store.get_registration_token(conn, token)
    if found is None:
        raise not_found(f"No such registration token: {token}")
    return token_json(found)


async def create_registration_token(
    svc: Services,
    token: str | None = None,
    *,
    uses_allowed: int | None = None,
    expiry_time: int | None = None,
    length: int = 16,
) -> dict[str, Any]:
    """A new token (random of ``length`` characters unless given)."""
    _check_limits(svc, uses_allowed, expiry_time)
    if token is None:
        if not 0 < length <= MAX_TOKEN_LENGTH:
            raise MatrixError(
                400, "M_INVALID_PARAM", f"length must be between 1 and {MAX_TOKEN_LENGTH}"
            )
        token = "".join(secrets.choice(TOKEN_CHARS) for _ in range(length))
    elif not token or len(token) > MAX_TOKEN_LENGTH or any(c not in TOKEN_CHARS for c in token):
        raise MatrixError(
            400,
            "M_INVALID_PARAM",
            f"token must be 1-{MAX_TOKEN_LENGTH} characters of A-Z, a-z, 0-9, '.', '_', '~', '-'",
        )
    async with svc.db.write() as conn:
        if await account_store.get_registration_token(conn, token) is not None:
            raise MatrixError(400, "M_INVALID_PARAM", f"Token already exists: {token}")
        await account_store.insert_registration_token(conn, token, uses_allowed, expiry_time)
    return await get_registration_token(svc, token)


_UNCHANGED: Any = object()


async def update_registration_token(
    svc: Services,
    token: str,
    *,
    uses_allowed: int | None = _UNCHANGED,
    expiry_time: int | None = _UNCHANGED,
) -> dict[str, Any]:
    """Change a token's limits; a limit passed as None is removed, one not passed is kept."""
    values: dict[str, object] = {}
    if uses_allowed is not _UNCHANGED:
        _check_limits(svc, uses_allowed, None)
        values["uses_allowed"] = uses_allowed
    if expiry_time is not _UNCHANGED:
        _check_limits(svc, None, expiry_time)
        values["expiry_time"] = expiry_time
    async with svc.db.write() as conn:
        if await account_store.get_registration_token(conn, token) is None:
            raise not_found(f"No such registration token: {token}")
        if values:
            await account_store.update_registration_token(conn, token, **values)
    return await get_registration_token(svc, token)


async def delete_registration_token(svc: Services, token: str) -> None:
    async with svc.db.write() as conn:
        if not await account_store.delete_registration_token(conn, token):
            raise not_found(f"No such registration token: {token}")


# ---------------------------------------------------------------------- media


async def purge_media_cache(svc: Services, before_ts: int) -> int:
    """Remove cached remote media not accessed since ``before_ts`` (ms); how many."""
    return await svc.media.purge_remote_cache(before_ts)
