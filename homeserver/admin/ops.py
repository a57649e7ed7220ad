"""Administrative operations shared by the ``kairan`` command and the admin HTTP API
(registration tokens are in ``tokens.py``)."""

from __future__ import annotations

from typing import Any

from homeserver.admin.ports import Accounts, Memberships, Profiles, RemoteMediaCache, Rooms
from homeserver.common.errors import MatrixError, not_found
from homeserver.storage import accounts as account_store
from homeserver.storage import rooms as room_store
from homeserver.storage.database import Database


def user_json(user: account_store.User) -> dict[str, Any]:
    return {
        "user_id": user.user_id,
        "displayname": user.displayname,
        "avatar_url": user.avatar_url,
        "admin": user.is_admin,
        "deactivated": user.deactivated,
        "locked": user.locked,
        "suspended": user.suspended,
        # A deactivated account keeps its hash only for /login's M_USER_DEACTIVATED.
        "has_password": user.password_hash is not None and not user.deactivated,
        "creation_ts": user.created_ts,
    }


class AdminOps:
    def __init__(
        self,
        db: Database,
        server_name: str,
        accounts: Accounts,
        rooms: Rooms,
        memberships: Memberships,
        profiles: Profiles,
        media: RemoteMediaCache,
    ) -> None:
        self.db = db
        self.server_name = server_name
        self.accounts = accounts
        self.rooms = rooms
        self.memberships = memberships
        self.profiles = profiles
        self.media = media

    async def add_user(
        self,
        localpart: str,
        password: str,
        *,
        admin: bool = False,
        displayname: str | None = None,
    ) -> str:
        self.accounts.check_new_password(password)
        return await self.accounts.create_user(
            localpart, password, admin=admin, displayname=displayname
        )

    async def list_users(self, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        async with self.db.read() as conn:
            users = await account_store.list_users(conn, limit, offset)
        return [
            {
                "user_id": u.user_id,
                "displayname": u.displayname,
                "admin": u.is_admin,
                "deactivated": u.deactivated,
                "locked": u.locked,
                "suspended": u.suspended,
                "creation_ts": u.created_ts,
            }
            for u in users
        ]

    async def require_local_user(self, user_id: str) -> None:
        if not self.accounts.is_local(user_id):
            raise MatrixError(400, "M_INVALID_PARAM", f"{user_id} is not a user of this server")
        if await self.accounts.get_user(user_id) is None:
            raise not_found(f"Unknown user {user_id}")

    async def deactivate_user(self, user_id: str) -> None:
        await self.require_local_user(user_id)
        async with self.db.read() as conn:
            joined = await room_store.memberships_of_user(conn, user_id, ["join", "invite"])
        for membership in joined:
            try:
                await self.memberships.leave(user_id, membership.room_id, None)
            except MatrixError:
                continue
        await self.accounts.deactivate(user_id)

    async def reset_password(self, user_id: str, password: str) -> None:
        await self.require_local_user(user_id)
        self.accounts.check_new_password(password)
        await self.accounts.set_password(user_id, password, logout_devices=True, keep_device=None)

    async def list_rooms(self) -> list[dict[str, Any]]:
        async with self.db.read() as conn:
            rooms = await room_store.list_rooms(conn)
        result = []
        for room in rooms:
            cache = await self.rooms.room(room.room_id)
            name = (
                (await self.rooms.state_content(cache, "m.room.name")).get("name")
                if cache
                else None
            )
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

    async def room_details(self, room_id: str) -> dict[str, Any]:
        cache = await self.rooms.room(room_id)
        if cache is None:
            raise not_found(f"Unknown room {room_id}")
        state = await self.rooms.current_state_events(room_id)
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

    # ------------------------------------------------------------------ users

    async def find_users(
        self,
        offset: int,
        limit: int,
        *,
        name: str | None = None,
        include_deactivated: bool = True,
    ) -> tuple[list[dict[str, Any]], int]:
        """A page of accounts whose ID or display name contains ``name``, and how many match."""
        if name is None and include_deactivated:
            async with self.db.read() as conn:
                page = await account_store.list_users(conn, limit, offset)
                total = await account_store.count_users(conn)
            return [user_json(u) for u in page], total
        async with self.db.read() as conn:
            everyone = await account_store.list_users(conn, 10**9, 0)
        term = (name or "").casefold()
        matching = [
            user_json(u)
            for u in everyone
            if (include_deactivated or not u.deactivated)
            and (term in u.user_id.casefold() or term in (u.displayname or "").casefold())
        ]
        return matching[offset : offset + limit], len(matching)

    async def count_users(self) -> int:
        async with self.db.read() as conn:
            return await account_store.count_users(conn)

    async def get_user(self, user_id: str) -> dict[str, Any]:
        await self.require_local_user(user_id)
        user = await self.accounts.get_user(user_id)
        assert user is not None
        return user_json(user)

    def _localpart(self, user_id: str) -> str:
        if not user_id.startswith("@") or not self.accounts.is_local(user_id):
            raise MatrixError(400, "M_INVALID_PARAM", f"{user_id} is not a user of this server")
        return user_id[1 : -len(self.server_name) - 1]

    async def modify_user(
        self,
        user_id: str,
        *,
        password: str | None = None,
        displayname: str | None = None,
        admin: bool | None = None,
        deactivated: bool | None = None,
        logout_devices: bool = True,
    ) -> bool:
        """Create ``user_id`` or change it; True when the account was created."""
        localpart = self._localpart(user_id)
        existing = await self.accounts.get_user(user_id)
        if existing is None:
            if deactivated:
                raise MatrixError(400, "M_INVALID_PARAM", "Cannot create a deactivated account")
            await self.accounts.create_user(
                localpart, password, admin=bool(admin), displayname=displayname
            )
            return True
        if deactivated is False and existing.deactivated:
            if password is None:
                raise MatrixError(
                    400, "M_MISSING_PARAM", "Reactivating an account needs a new password"
                )
            async with self.db.write() as conn:
                await account_store.update_user(conn, user_id, deactivated=False)
        elif existing.deactivated and (password is not None or displayname is not None):
            raise MatrixError(
                400, "M_INVALID_PARAM", "The account is deactivated; reactivate it first"
            )
        if password is not None and not deactivated:
            await self.accounts.set_password(
                user_id, password, logout_devices=logout_devices, keep_device=None
            )
        if admin is not None and admin != existing.is_admin:
            await self.accounts.set_admin(user_id, admin)
        if displayname is not None and not deactivated:
            await self.profiles.set_profile_field(user_id, "displayname", displayname)
        if deactivated and not existing.deactivated:
            await self.deactivate_user(user_id)
        return False

    async def list_devices(self, user_id: str) -> list[dict[str, Any]]:
        await self.require_local_user(user_id)
        async with self.db.read() as conn:
            devices = await account_store.get_devices(conn, user_id)
        return [
            {
                "device_id": d.device_id,
                "display_name": d.display_name,
                "last_seen_ts": d.last_seen_ts,
                "last_seen_ip": d.last_seen_ip,
                "last_seen_user_agent": d.last_seen_user_agent,  # as Synapse's admin API
                "user_id": d.user_id,
            }
            for d in devices
        ]

    async def delete_device(self, user_id: str, device_id: str) -> None:
        """Log the device out (its access tokens go with it)."""
        await self.require_local_user(user_id)
        await self.accounts.delete_device(user_id, device_id)

    # ------------------------------------------------------------------ rooms

    async def shutdown_room(self, room_id: str) -> dict[str, Any]:
        """Close the room to new joins, make every local member leave (invites are rejected),
        and unpublish it.

        The join rule becomes ``invite``, set by the first local member with the power to set
        it (``closed`` says whether one could); remote servers' members are not touched.
        """
        cache = await self.rooms.room(room_id)
        if cache is None:
            raise not_found(f"Unknown room {room_id}")
        closed = False
        for user_id in sorted(cache.joined()):
            if not self.accounts.is_local(user_id):
                continue
            try:
                await self.memberships.send_state(
                    user_id, room_id, "m.room.join_rules", "", {"join_rule": "invite"}
                )
            except MatrixError:
                continue
            closed = True
            break
        left: list[str] = []
        failed: list[str] = []
        for user_id, membership in sorted(cache.members.items()):
            if membership not in ("join", "invite", "knock") or not self.accounts.is_local(user_id):
                continue
            try:
                await self.memberships.leave(user_id, room_id, "This room has been shut down")
                left.append(user_id)
            except MatrixError:
                failed.append(user_id)
        async with self.db.write() as conn:
            await room_store.set_room_public(conn, room_id, False)
        return {"kicked_users": left, "failed_to_kick_users": failed, "closed": closed}

    # ------------------------------------------------------------------ media

    async def purge_media_cache(self, before_ts: int) -> int:
        """Remove cached remote media not accessed since ``before_ts`` (ms); how many."""
        return await self.media.purge_remote_cache(before_ts)
