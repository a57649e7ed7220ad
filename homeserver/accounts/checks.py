"""The login check port: what accounts ask before a login and at each use of a token.
Features implement it (lost-phone lockout, devices held for approval, network zones)."""

from __future__ import annotations

from dataclasses import dataclass

from homeserver.accounts.requester import Requester


@dataclass(frozen=True)
class ClientInfo:
    """Where a Client-Server request comes from."""

    ip: str | None
    user_agent: str | None = None
    #: The zone of the listener it arrived on (``listeners`` in kairan.yaml).
    zone: str = "default"


@dataclass(frozen=True)
class LoginAttempt:
    user_id: str
    #: The device the client asked for, or None for a new one.
    device_id: str | None
    display_name: str | None
    client: ClientInfo


class LoginCheck:
    """Refuses logins and uses of access tokens: raise a ``MatrixError`` to refuse (e.g.
    403 ``M_FORBIDDEN``, or 401 ``M_UNKNOWN_TOKEN`` with ``soft_logout``); the defaults allow.
    To hold a new device for approval, note it in :meth:`logged_in` and refuse its
    requests in :meth:`check_access` until it is approved."""

    async def check_login(self, attempt: LoginAttempt) -> None:
        """After the password was accepted, before a device and token are made."""

    async def logged_in(self, requester: Requester, attempt: LoginAttempt) -> None:
        """Once the login's device and token are made (``requester`` names the device)."""

    async def check_access(self, requester: Requester, client: ClientInfo) -> None:
        """For every authenticated Client-Server request, once its token was found."""
