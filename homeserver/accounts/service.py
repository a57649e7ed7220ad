"""Accounts: registration, login, access tokens, devices, passwords, deactivation."""

from __future__ import annotations

import dataclasses
import secrets

from federation.identifiers import is_valid_localpart
from homeserver.accounts.checks import ClientInfo, LoginAttempt, LoginCheck
from homeserver.accounts.last_seen import LastSeen, user_agent_of
from homeserver.accounts.passwords import Passwords, check_new_password
from homeserver.accounts.requester import Requester as Requester  # re-exported
from homeserver.accounts.sessions import IssuedTokens, SessionTokens, token_hash
from homeserver.accounts.throttle import LoginThrottle
from homeserver.common.clock import Clock
from homeserver.common.errors import MatrixError, forbidden, invalid_param, unknown_token
from homeserver.config import PasswordPolicy, Sessions
from homeserver.storage import accounts as store
from homeserver.storage import sessions as sessions_store
from homeserver.storage.database import Database

TOKEN_CACHE_SECONDS = 5.0
#: The longest device ID a client may choose (the column holds 255 characters).
MAX_DEVICE_ID_CHARS = 255

#: A device of a user, as the device APIs list it.
Device = store.Device


_token_hash = token_hash


def locked_error() -> MatrixError:
    return MatrixError(401, "M_USER_LOCKED", "This account has been locked", soft_logout=True)


def new_device_id() -> str:
    return "".join(secrets.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(10))


class AccountService:
    def __init__(
        self,
        db: Database,
        server_name: str,
        clock: Clock,
        passwords: Passwords,
        admin_localparts: tuple[str, ...] = (),
        password_policy: PasswordPolicy | None = None,
        login_check: LoginCheck | None = None,
        throttle: LoginThrottle | None = None,
        sessions: Sessions | None = None,
    ) -> None:
        self.db = db
        #: Refresh tokens and login tokens.
        self.tokens = SessionTokens(db, clock, sessions or Sessions())
        #: Limits on guessing passwords (rc_login); None: no limits.
        self.throttle = throttle
        #: The features' login and access checks (homeserver/extensions), if any.
        self.login_check = login_check
        self.server_name = server_name
        self.clock = clock
        self.passwords = passwords
        self.password_policy = password_policy or PasswordPolicy()
        self._admins = {f"@{lp}:{server_name}" for lp in admin_localparts}
        #: token hash -> (requester, when cached, expiry in ms or None); entries live briefly so
        #: that changes made by another process (the ``kairan`` command) take effect within
        #: seconds.
        self._token_cache: dict[bytes, tuple[Requester, float, int | None]] = {}
        #: When, where from and with which client each device was last seen.
        self.last_seen = LastSeen(db, clock)

    def user_id(self, localpart: str) -> str:
        return f"@{localpart}:{self.server_name}"

    def is_local(self, user_id: str) -> bool:
        return user_id.endswith(":" + self.server_name)

    # ------------------------------------------------------------- accounts

    def check_new_password(self, password: str, *, too_long_errcode: str = "M_UNKNOWN") -> None:
        """Refuse a new password that is too long or breaks the configured policy."""
        check_new_password(password, self.password_policy, too_long_errcode=too_long_errcode)

    def check_localpart(self, localpart: str) -> None:
        if not localpart or not is_valid_localpart(localpart):
            raise MatrixError(
                400, "M_INVALID_USERNAME",
                "User ID may only contain a-z, 0-9, and . _ = - / +",
            )  # fmt: skip
        if len(self.user_id(localpart).encode()) > 255:
            raise MatrixError(400, "M_INVALID_USERNAME", "User ID is longer than 255 bytes")

    async def username_available(self, localpart: str) -> bool:
        self.check_localpart(localpart)
        async with self.db.read() as conn:
            return await store.get_user(conn, self.user_id(localpart)) is None

    async def create_user(
        self,
        localpart: str,
        password: str | None,
        *,
        admin: bool = False,
        displayname: str | None = None,
    ) -> str:
        self.check_localpart(localpart)
        user_id = self.user_id(localpart)
        password_hash = await self.passwords.hash(password) if password else None
        async with self.db.write() as conn:
            if await store.get_user(conn, user_id) is not None:
                raise MatrixError(400, "M_USER_IN_USE", "User ID already taken.")
            await store.insert_user(
                conn,
                user_id,
                password_hash,
                self.clock.now_ms(),
                is_admin=admin,
                displayname=displayname if displayname is not None else localpart,
            )
        return user_id

    async def get_user(self, user_id: str) -> store.User | None:
        async with self.db.read() as conn:
            return await store.get_user(conn, user_id)

    async def server_admins(self) -> list[str]:
        """The active server admins, the oldest account first."""
        async with self.db.read() as conn:
            return await store.list_admins(conn)

    async def set_password(
        self, user_id: str, password: str, *, logout_devices: bool, keep_device: str | None
    ) -> None:
        """Change the password; with ``logout_devices`` every other device is logged out."""
        password_hash = await self.passwords.hash(password)
        async with self.db.write() as conn:
            await store.update_user(conn, user_id, password_hash=password_hash)
            if logout_devices:
                await store.delete_tokens_of_user(conn, user_id, except_device=keep_device)
        if logout_devices:
            self._drop_cached_tokens(user_id, except_device=keep_device)

    def random_suffix(self) -> str:
        return secrets.token_hex(5)

    async def deactivate(self, user_id: str) -> None:
        async with self.db.write() as conn:
            # The hash stays, so that /login can tell the right password of a deactivated
            # account (M_USER_DEACTIVATED) from a wrong one; nothing else reads it then.
            await store.update_user(conn, user_id, deactivated=True)
            await store.delete_tokens_of_user(conn, user_id)
        self._drop_cached_tokens(user_id)

    async def set_admin(self, user_id: str, admin: bool) -> None:
        async with self.db.write() as conn:
            await store.update_user(conn, user_id, is_admin=admin)
        self._drop_cached_tokens(user_id)

    def _drop_cached_tokens(self, user_id: str, except_device: str | None = None) -> None:
        for key, (requester, *_) in list(self._token_cache.items()):
            if requester.user_id == user_id and requester.device_id != except_device:
                del self._token_cache[key]

    def _drop_device_tokens(self, user_id: str, device_id: str) -> None:
        for key, (requester, *_) in list(self._token_cache.items()):
            if requester.user_id == user_id and requester.device_id == device_id:
                del self._token_cache[key]

    # ------------------------------------------------------------- login and tokens

    async def check_password(self, user_id: str, password: str) -> bool:
        """Whether ``password`` is the password of the active account ``user_id``."""
        user = await self.get_user(user_id)
        right = await self.passwords.verify(user.password_hash if user else None, password)
        return right and user is not None and not user.deactivated

    async def check_password_stage(self, user_id: str, password: str) -> bool:
        """The password stage of user-interactive auth: ``check_password`` within the
        limits on wrong passwords (429 before any hash is computed when over them)."""
        if self.throttle is not None:
            self.throttle.before_password_stage(user_id)
        right = await self.check_password(user_id, password)
        if not right and self.throttle is not None:
            self.throttle.wrong_password(user_id)
        return right

    async def check_login_password(
        self, user_id: str, password: str, ip: str | None = None
    ) -> None:
        """/login's check: 403 M_FORBIDDEN unless ``password`` is right; 403
        M_USER_DEACTIVATED (the spec's error) for the right password of a deactivated
        account, so that only who knows the password learns of the deactivation. (Synapse
        clears the hash at deactivation and answers M_USER_DEACTIVATED to any password.)"""
        if self.throttle is not None:
            self.throttle.before_login(ip, user_id)
        user = await self.get_user(user_id)
        # Unknown users and accounts without a password cost the same argon2 work.
        right = await self.passwords.verify(user.password_hash if user else None, password)
        if not right or user is None:
            if self.throttle is not None:
                self.throttle.wrong_password(user_id)
            raise forbidden("Invalid username or password")
        if user.deactivated:
            raise MatrixError(403, "M_USER_DEACTIVATED", "This account has been deactivated")
        if self.throttle is not None:
            self.throttle.logged_in(user_id)

    async def login(
        self,
        user_id: str,
        device_id: str | None,
        display_name: str | None,
        ip: str | None,
        *,
        client: ClientInfo | None = None,
    ) -> tuple[str, str]:
        """A new access token (that never expires) for ``user_id`` on ``device_id``."""
        issued = await self.login_tokens(user_id, device_id, display_name, ip, client=client)
        return issued.access_token, issued.device_id

    async def login_tokens(
        self,
        user_id: str,
        device_id: str | None,
        display_name: str | None,
        ip: str | None,
        *,
        client: ClientInfo | None = None,
        refreshable: bool = False,
    ) -> IssuedTokens:
        """A new access token for ``user_id`` on ``device_id`` (created if new), once the
        login checks allow it; with ``refreshable`` it expires and comes with a refresh
        token.  A locked account gets 401 ``M_USER_LOCKED`` (as Synapse)."""
        if device_id is not None and not 0 < len(device_id) <= MAX_DEVICE_ID_CHARS:
            raise invalid_param(f"device_id must be 1-{MAX_DEVICE_ID_CHARS} characters")
        user = await self.get_user(user_id)
        if user is not None and user.deactivated:
            raise MatrixError(403, "M_USER_DEACTIVATED", "This account has been deactivated")
        if user is not None and user.locked:
            raise locked_error()
        client = client or ClientInfo(ip)
        attempt = LoginAttempt(user_id, device_id, display_name, client)
        if self.login_check is not None:
            await self.login_check.check_login(attempt)
        device_id = device_id or new_device_id()
        now = self.clock.now_ms()
        issued, row = self.tokens.new(user_id, device_id, refreshable=refreshable)
        agent = user_agent_of(client)
        async with self.db.write() as conn:
            await store.upsert_device(conn, user_id, device_id, display_name, now, ip, agent)
            await sessions_store.insert_tokens(conn, row)
        self.last_seen.written(user_id, device_id, ClientInfo(ip, agent), now)
        if self.login_check is not None:
            await self.login_check.logged_in(Requester(user_id, device_id), attempt)
        return issued

    async def refresh(self, refresh_token: str) -> IssuedTokens:
        """``/refresh``: new tokens for a refresh token (a locked account's are refused)."""
        user_id, issued = await self.tokens.refresh(refresh_token)
        user = await self.get_user(user_id)
        if user is None or user.deactivated:
            raise unknown_token()
        if user.locked:
            raise locked_error()
        return issued

    async def authenticate(self, token: str) -> Requester:
        """Who a token belongs to: 401 ``M_UNKNOWN_TOKEN`` for an unknown one, with
        ``soft_logout`` for an expired one (as Synapse).  The first use of a token that came
        with a refresh token revokes the refresh token it was issued for."""
        key = _token_hash(token)
        cached = self._token_cache.get(key)
        now = self.clock.monotonic()
        if cached is not None and now - cached[1] < TOKEN_CACHE_SECONDS:
            if cached[2] is not None and cached[2] <= self.clock.now_ms():
                raise unknown_token("Access token has expired", soft_logout=True)
            return cached[0]
        async with self.db.read() as conn:
            found = await sessions_store.lookup_access_token(conn, key)
            user = await store.get_user(conn, found.user_id) if found else None
        if found is None or user is None or user.deactivated:
            raise unknown_token()
        if found.valid_until_ms is not None and found.valid_until_ms <= self.clock.now_ms():
            raise unknown_token("Access token has expired", soft_logout=True)
        if found.refresh_token_sha256 is not None and not found.used:
            async with self.db.write() as conn:
                await sessions_store.mark_access_token_used(conn, key)
        requester = Requester(
            found.user_id,
            found.device_id,
            user.is_admin or found.user_id in self._admins,
            locked=user.locked,
            suspended=user.suspended,
        )
        if len(self._token_cache) > 100_000:
            self._token_cache.clear()
        self._token_cache[key] = (requester, now, found.valid_until_ms)
        return requester

    async def check_access(self, requester: Requester, client: ClientInfo) -> None:
        """The features' checks of a token's use (a refused device gets their error)."""
        if self.login_check is not None:
            await self.login_check.check_access(requester, client)

    async def logout(self, token: str) -> None:
        key = _token_hash(token)
        requester = await self.authenticate(token)
        async with self.db.write() as conn:
            await store.delete_device(conn, requester.user_id, requester.device_id)
        self._token_cache.pop(key, None)
        self._drop_device_tokens(requester.user_id, requester.device_id)

    async def logout_all(self, user_id: str) -> None:
        async with self.db.write() as conn:
            for device in await store.get_devices(conn, user_id):
                await store.delete_device(conn, user_id, device.device_id)
        self._drop_cached_tokens(user_id)

    async def delete_device(self, user_id: str, device_id: str) -> None:
        async with self.db.write() as conn:
            if await store.get_device(conn, user_id, device_id) is None:
                raise MatrixError(404, "M_NOT_FOUND", "Unknown device")
            await store.delete_device(conn, user_id, device_id)
        self._drop_device_tokens(user_id, device_id)

    def require_admin(self, requester: Requester) -> None:
        if not requester.is_admin:
            raise forbidden("You are not a server admin")

    # ------------------------------------------------------------- moderation

    async def moderate(
        self,
        user_id: str,
        *,
        locked: bool | None = None,
        suspended: bool | None = None,
        by: Requester | None = None,
    ) -> store.User:
        """Lock or suspend a local account (or lift it; None: no change) and return it.  The
        admin endpoints (``by``: who asks) may not change their own account nor another
        admin's (403); remote users are 400 ``M_INVALID_PARAM``, unknown or deactivated ones
        404.  The account's sessions stay, as the spec says."""
        if not self.is_local(user_id):
            raise invalid_param("User does not belong to the local server.")
        user = await self.get_user(user_id)
        if user is None or user.deactivated:
            raise MatrixError(404, "M_NOT_FOUND", "User not found.")
        values = {k: v for k, v in (("locked", locked), ("suspended", suspended)) if v is not None}
        if not values:
            return user
        if by is not None and by.user_id == user_id:
            raise forbidden("You cannot change the status of your own account.")
        if by is not None and (user.is_admin or user_id in self._admins):
            raise forbidden("The target user is a server administrator.")
        async with self.db.write() as conn:
            await store.update_user(conn, user_id, **values)
        self._drop_cached_tokens(user_id)
        return dataclasses.replace(user, **values)  # type: ignore[arg-type]

    # ------------------------------------------------------------- devices

    async def devices(self, user_id: str) -> list[Device]:
        async with self.db.read() as conn:
            return await store.get_devices(conn, user_id)

    async def device(self, user_id: str, device_id: str) -> Device | None:
        async with self.db.read() as conn:
            return await store.get_device(conn, user_id, device_id)

    # ------------------------------------------------------------- registration tokens

    async def registration_token_usable(self, token: str) -> bool:
        """Whether a registration with ``token`` may complete: it exists, has not expired
        and has uses left."""
        async with self.db.read() as conn:
            found = await store.get_registration_token(conn, token)
        now = self.clock.now_ms()
        return not (
            found is None
            or (found.expiry_time is not None and found.expiry_time < now)
            or (found.uses_allowed is not None and found.completed >= found.uses_allowed)
        )

    async def registration_token_valid(self, token: str) -> bool:
        """The answer of ``/register/m.login.registration_token/validity``: whether a
        registration with ``token`` could complete (the same rule as the registration
        stage: it exists, has not expired and has uses left)."""
        return await self.registration_token_usable(token)

    async def use_registration_token(self, token: str) -> None:
        """A registration with ``token`` completed."""
        async with self.db.write() as conn:
            await store.use_registration_token(conn, token)
