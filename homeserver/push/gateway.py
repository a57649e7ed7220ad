"""Talking to push gateways: the notification body of the Push Gateway API, and the POST.

The body (``POST /_matrix/push/v1/notify``) is built by :func:`notification`: the event's
fields, the room's name and the sender's display name, ``counts.unread`` (omitted when
zero, as the spec asks), and one device carrying the pusher's ``data`` minus ``url``
plus the tweaks of the push rule.  With ``format: event_id_only`` only the event ID, the
room ID, the priority, the counts and the device (without tweaks, as Synapse) are sent.

:class:`GatewayClient` is the SSRF guard of outbound pushes: the gateway's host is
resolved and private, loopback and link-local addresses are refused unless
``push.allow_private_addresses``; the connection goes to the address that was checked (no
second resolution), and redirects are not followed.
"""

from __future__ import annotations

import json
import logging
import urllib.parse
from collections.abc import Mapping
from typing import Any

import aiohttp
import yarl

from federation.client import is_private, resolve
from homeserver.storage.push import Pusher

log = logging.getLogger(__name__)

NOTIFY_PATH = "/_matrix/push/v1/notify"
MAX_RESPONSE_BYTES = 64 * 1024
USER_AGENT = "Kairan"


class GatewayError(Exception):
    """The push gateway could not be reached or answered with an error."""


def notification(
    pusher: Pusher,
    pdu: Mapping[str, Any],
    event_id: str,
    *,
    user_id: str,
    tweaks: Mapping[str, Any],
    badge: int,
    include_content: bool,
    room_name: str | None = None,
    room_alias: str | None = None,
    sender_display_name: str | None = None,
) -> dict[str, Any]:
    """The body of a notify request about one event, for one pusher."""
    event_type = pdu.get("type")
    high = event_type == "m.room.encrypted" or tweaks.get("highlight") or tweaks.get("sound")
    data = {k: v for k, v in pusher.data.items() if k != "url"}
    device: dict[str, Any] = {
        "app_id": pusher.app_id,
        "pushkey": pusher.pushkey,
        "pushkey_ts": pusher.pushkey_ts // 1000,
        "data": data,
    }
    body: dict[str, Any] = {
        "event_id": event_id,
        "room_id": pdu.get("room_id"),
        "prio": "high" if high else "low",
    }
    if badge > 0:
        body["counts"] = {"unread": badge}
    if pusher.data.get("format") != "event_id_only":
        body["type"] = event_type
        body["sender"] = pdu.get("sender")
        content = pdu.get("content")
        if include_content and isinstance(content, dict) and content:
            body["content"] = content
        if event_type == "m.room.member" and isinstance(pdu.get("state_key"), str):
            membership = content.get("membership") if isinstance(content, dict) else None
            if isinstance(membership, str):
                body["membership"] = membership
            body["user_is_target"] = pdu["state_key"] == user_id
        if sender_display_name:
            body["sender_display_name"] = sender_display_name
        if room_name:
            body["room_name"] = room_name
        if room_alias:
            body["room_alias"] = room_alias
        if tweaks:
            device["tweaks"] = dict(tweaks)
    body["devices"] = [device]
    return {"notification": body}


def check_url(url: str) -> str | None:
    """Why ``url`` cannot be a push gateway's notify URL, or None when it can."""
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return "'url' is not a valid URL"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "'url' must be an http(s) URL"
    if parts.path != NOTIFY_PATH:
        return f"'url' must have the path {NOTIFY_PATH}"
    return None


class GatewayClient:
    def __init__(self, *, allow_private_addresses: bool, timeout_s: float = 30.0) -> None:
        self.allow_private = allow_private_addresses
        self._timeout = aiohttp.ClientTimeout(total=timeout_s, connect=10)
        self._session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=100, limit_per_host=10),
                timeout=self._timeout,
                headers={"User-Agent": USER_AGENT},
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _address(self, host: str, port: int) -> str:
        try:
            candidates = await resolve(host, port)
        except OSError as e:
            raise GatewayError(f"cannot resolve {host}: {e}") from e
        allowed = [a for a in candidates if self.allow_private or not is_private(a)]
        if not allowed:
            raise GatewayError(
                f"{host} resolves only to private or loopback addresses"
                f" ({', '.join(candidates)}); set push.allow_private_addresses to allow them"
            )
        return allowed[0]

    async def post(self, url: str, body: Mapping[str, Any]) -> list[str]:
        """POST a notification; the pushkeys the gateway rejected.  GatewayError on failure."""
        problem = check_url(url)
        if problem is not None:
            raise GatewayError(problem)
        target = yarl.URL(url)
        host = target.host or ""
        port = target.port or (443 if target.scheme == "https" else 80)
        address = await self._address(host.strip("[]"), port)
        literal = f"[{address}]" if ":" in address else address
        connect_to = target.with_host(literal) if literal != host else target
        headers = {"Host": target.raw_authority, "Content-Type": "application/json"}
        extra: dict[str, Any] = {}
        if target.scheme == "https":
            extra["server_hostname"] = host
        payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
        try:
            async with self._http().post(
                connect_to, data=payload, headers=headers, allow_redirects=False, **extra
            ) as response:
                raw = await response.content.read(MAX_RESPONSE_BYTES + 1)
                if not 200 <= response.status < 300:
                    raise GatewayError(f"{url} answered {response.status}")
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            raise GatewayError(f"{url}: {type(e).__name__}: {e}") from e
        if len(raw) > MAX_RESPONSE_BYTES:
            raise GatewayError(f"{url}: response too large")
        try:
            answer = json.loads(raw) if raw.strip() else {}
        except (ValueError, UnicodeDecodeError) as e:
            raise GatewayError(f"{url}: response is not JSON") from e
        rejected = answer.get("rejected") if isinstance(answer, dict) else None
        return [k for k in rejected if isinstance(k, str)] if isinstance(rejected, list) else []
