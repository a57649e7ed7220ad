"""Who made a request."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Requester:
    """Who made a request: the user and device its access token belongs to."""

    user_id: str
    device_id: str
    is_admin: bool = False
    #: Account moderation (Matrix 1.12/1.13): a locked account may only log out; a suspended
    #: one may read but not join, invite, send or change its profile.
    locked: bool = False
    suspended: bool = False
