"""Partner accounts' pure rules: the expiry date and when it has passed, and which rooms a
partner may create and which state it may set (no I/O; tested on their own).

A partner account expiring on 2027-03-31 works through that whole day in the node's time
zone (Asia/Tokyo unless the feature's ``timezone`` setting says otherwise) and stops at
2027-04-01 00:00 there.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

#: The errcode of an expired account: Synapse's account validity module answers it (403),
#: and clients that know it show the account as expired.
EXPIRED = "ORG_MATRIX_EXPIRED_ACCOUNT"
#: The profile field that shows an account is a partner's.
PROFILE_FIELD = "jp.kairan.partner"
DEFAULT_TIMEZONE = "Asia/Tokyo"

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def parse_date(text: object) -> dt.date:
    """An expiry date as ``YYYY-MM-DD``; ValueError with a one-line reason otherwise."""
    if not isinstance(text, str) or not _DATE.fullmatch(text):
        raise ValueError("expires must be a date as YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"expires: {text} is not a date") from None


def timezone(name: object) -> ZoneInfo:
    if not isinstance(name, str):
        raise ValueError("timezone must be a name such as Asia/Tokyo")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown timezone {name!r}") from None


def ends_at_ms(expires: dt.date, zone: ZoneInfo) -> int:
    """The instant the account stops working: the start of the day after ``expires``."""
    after = dt.datetime.combine(expires + dt.timedelta(days=1), dt.time(), tzinfo=zone)
    return int(after.timestamp() * 1000)


def expired(expires: dt.date, now_ms: int, zone: ZoneInfo) -> bool:
    return now_ms >= ends_at_ms(expires, zone)


def today(now_ms: int, zone: ZoneInfo) -> dt.date:
    return dt.datetime.fromtimestamp(now_ms / 1000, tz=zone).date()


def refused_room(request: Mapping[str, Any]) -> str | None:
    """Why a partner may not create the room ``request`` (a createRoom body) asks for, or
    None: a partner starts direct chats only, never a public or listed room."""
    if request.get("is_direct") is not True:
        return "Partner accounts may only start direct chats"
    if request.get("visibility") == "public" or request.get("preset") == "public_chat":
        return "Partner accounts may not create public rooms"
    if request.get("room_alias_name") is not None:
        return "Partner accounts may not create room aliases"
    initial = request.get("initial_state")
    for event in initial if isinstance(initial, list) else ():
        if isinstance(event, Mapping):
            reason = refused_state(str(event.get("type")), event.get("content"))
            if reason is not None:
                return reason
    return None


#: Join rules that let in only those invited (or already in the room).
_CLOSED_JOIN_RULES = ("invite", "private")


def refused_state(event_type: str, content: object) -> str | None:
    """Why a partner may not set this state in a room (open its door, make it readable by
    anyone), or None."""
    if not isinstance(content, Mapping):
        return None
    if event_type == "m.room.join_rules" and content.get("join_rule") not in _CLOSED_JOIN_RULES:
        return "Partner accounts may not open a room to others than those invited"
    if (
        event_type == "m.room.history_visibility"
        and content.get("history_visibility") == "world_readable"
    ):
        return "Partner accounts may not make a room readable by anyone"
    return None
