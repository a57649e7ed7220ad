"""The partners feature's service: which accounts are partners and until when, and the
policy, login check, directory filter and profile field that act on it.

Partner accounts are few, so the service keeps them all in memory, read again from the
database at most every ``refresh_seconds`` (10 by default; a change made through this node's
admin API applies at once, one made by ``kairan`` commands within that time).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from homeserver.common.clock import Clock
from homeserver.common.errors import MatrixError, forbidden
from homeserver.extensions import (
    ClientInfo,
    EventPolicy,
    LoginAttempt,
    LoginCheck,
    ProposedEvent,
)
from homeserver.extensions.points import Requester
from homeserver.municipal.partners import rules, storage


@dataclass(frozen=True)
class Partner:
    user_id: str
    #: The last day the account works.
    expires: dt.date
    added_ts: int
    changed_by: str

    def as_json(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "expires": self.expires.isoformat(),
            "added_ts": self.added_ts,
            "changed_by": self.changed_by,
        }


@dataclass(frozen=True)
class PartnerSettings:
    zone: ZoneInfo
    refresh_ms: int

    @classmethod
    def parse(cls, settings: Mapping[str, Any]) -> PartnerSettings:
        """The feature's section of kairan.yaml (``timezone``, ``refresh_seconds``);
        ValueError for a bad one (``kairan serve`` names it and stops)."""
        zone = rules.timezone(settings.get("timezone", rules.DEFAULT_TIMEZONE))
        refresh = settings.get("refresh_seconds", 10)
        if not isinstance(refresh, int | float) or isinstance(refresh, bool) or refresh < 0:
            raise ValueError("refresh_seconds must be a number of seconds")
        return cls(zone, int(refresh * 1000))


class PartnerService:
    def __init__(self, settings: PartnerSettings, db: Any, clock: Clock) -> None:
        self.settings = settings
        self.db = db
        self.clock = clock
        self._known: dict[str, Partner] = {}
        self._loaded_ms: int | None = None
        self._lock = asyncio.Lock()
        self.policy = PartnerPolicy(self)
        self.logins = PartnerLogins(self)
        self.directory = PartnerDirectory(self)
        self.profile = PartnerProfile(self)

    # ------------------------------------------------------------------ reading

    async def _partners(self) -> dict[str, Partner]:
        now = self.clock.now_ms()
        loaded = self._loaded_ms
        if loaded is not None and now - loaded < self.settings.refresh_ms:
            return self._known
        async with self._lock:
            if self._loaded_ms == loaded:
                async with self.db.read() as conn:
                    rows = await storage.all_partners(conn)
                self._known = {r.user_id: _partner(r) for r in rows}
                self._loaded_ms = now
        return self._known

    async def is_partner(self, user_id: str) -> bool:
        """Whether ``user_id`` is a partner account (expired or not): what other features
        ask (``partners.service``), e.g. the organisation directory, which never lists one."""
        return await self.get(user_id) is not None

    async def get(self, user_id: str) -> Partner | None:
        return (await self._partners()).get(user_id)

    async def all(self) -> list[Partner]:
        return sorted((await self._partners()).values(), key=lambda p: p.user_id)

    def expired(self, partner: Partner) -> bool:
        return rules.expired(partner.expires, self.clock.now_ms(), self.settings.zone)

    def expired_error(self, partner: Partner) -> MatrixError:
        return MatrixError(
            403,
            rules.EXPIRED,
            f"This partner account expired: its last day was {partner.expires.isoformat()} "
            f"({self.settings.zone.key})",
        )

    async def refuse_expired(self, user_id: str) -> None:
        partner = await self.get(user_id)
        if partner is not None and self.expired(partner):
            raise self.expired_error(partner)

    # ------------------------------------------------------------------ writing

    async def set(self, user_id: str, expires: dt.date, by: str) -> Partner:
        """Make a (local, existing: the caller checks) account a partner until ``expires``,
        or move the date of one."""
        async with self.db.write() as conn:
            await storage.put(conn, user_id, expires.isoformat(), self.clock.now_ms(), by)
            row = await storage.get(conn, user_id)
        assert row is not None
        self._loaded_ms = None
        return _partner(row)

    async def remove(self, user_id: str) -> bool:
        """The account is a partner no more (a staff member now); False if it was not one."""
        async with self.db.write() as conn:
            removed = await storage.delete(conn, user_id)
        self._loaded_ms = None
        return removed


def _partner(row: storage.PartnerRow) -> Partner:
    return Partner(row.user_id, dt.date.fromisoformat(row.expires), row.added_ts, row.changed_by)


class PartnerPolicy(EventPolicy):
    """A partner sees only the rooms it is invited to: no join without an invite (by ID,
    alias or over federation), no peeking at world-readable rooms, no knocking; it starts
    direct chats only and may not open a room's door.  Nobody invites an expired one."""

    def __init__(self, service: PartnerService) -> None:
        self.service = service

    async def check_event(self, event: ProposedEvent) -> None:
        if not event.local or await self.service.get(event.sender) is None:
            return
        if (
            event.type == "m.room.member"
            and event.state_key == event.sender
            and event.content.get("membership") == "knock"
        ):
            raise forbidden("Partner accounts join only rooms they are invited to")
        reason = rules.refused_state(event.type, event.content)
        if reason is not None and event.state_key is not None:
            raise forbidden(reason)

    async def user_may_create_room(self, user_id: str, request: Mapping[str, Any]) -> None:
        if await self.service.get(user_id) is None:
            return
        reason = rules.refused_room(request)
        if reason is not None:
            raise forbidden(reason)

    async def user_may_invite(self, inviter: str, invitee: str, room_id: str) -> None:
        partner = await self.service.get(invitee)
        if partner is not None and self.service.expired(partner):
            raise forbidden(
                f"The partner account {invitee} expired after {partner.expires.isoformat()}"
            )

    async def user_may_join_room(self, user_id: str, room_id: str, is_invited: bool) -> None:
        if not is_invited and await self.service.get(user_id) is not None:
            raise forbidden("Partner accounts join only rooms they are invited to")

    async def user_may_join_via(self, user_id: str, room_id: str, servers: Sequence[str]) -> None:
        """Asked after :meth:`user_may_join_room`, which already refused an uninvited join."""

    async def user_may_peek(self, user_id: str, room_id: str) -> None:
        if await self.service.get(user_id) is not None:
            raise forbidden("Partner accounts see only the rooms they are invited to")


class PartnerLogins(LoginCheck):
    """After its last day a partner account can neither log in nor use its tokens (403
    ``ORG_MATRIX_EXPIRED_ACCOUNT``, as Synapse's account validity answers)."""

    def __init__(self, service: PartnerService) -> None:
        self.service = service

    async def check_login(self, attempt: LoginAttempt) -> None:
        await self.service.refuse_expired(attempt.user_id)

    async def check_access(self, requester: Requester, client: ClientInfo) -> None:
        await self.service.refuse_expired(requester.user_id)


class PartnerDirectory:
    """Partners are absent from the user directory (for everyone, partners included)."""

    def __init__(self, service: PartnerService) -> None:
        self.service = service

    async def hidden_users(self, searcher: str, user_ids: Collection[str]) -> Collection[str]:
        known = await self.service._partners()
        return [u for u in user_ids if u in known]


class PartnerProfile:
    """``jp.kairan.partner`` in a partner's profile: ``{"expires": "2027-03-31"}``; no user
    may set or remove it through the profile endpoints."""

    protected = frozenset({rules.PROFILE_FIELD})

    def __init__(self, service: PartnerService) -> None:
        self.service = service

    async def fields(self, user_id: str) -> Mapping[str, Any]:
        partner = await self.service.get(user_id)
        if partner is None:
            return {}
        return {rules.PROFILE_FIELD: {"expires": partner.expires.isoformat()}}
