"""Pushers: ``GET /pushers`` and ``POST /pushers/set``, stored per user.

A pusher is keyed by (user, ``app_id``, ``pushkey``).  Without ``append`` a new pusher
takes its ``app_id``/``pushkey`` from every other user.  ``kind: null`` deletes.  A pusher
belongs to the device whose access token set it: logging that device out deletes it
(``homeserver/storage/accounts.py``).  ``http`` pushers need ``data.url`` with the path
``/_matrix/push/v1/notify``.  ``email`` pushers need the address to be a verified email
3PID of the account, as in Synapse; Kairan keeps no 3PIDs, so they are refused with
``M_THREEPID_NOT_FOUND``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from homeserver.accounts.service import Requester
from homeserver.common.clock import Clock
from homeserver.common.errors import MatrixError, bad_json, invalid_param, missing_param
from homeserver.push.gateway import check_url
from homeserver.push.sender import PusherPool
from homeserver.storage import push as store
from homeserver.storage.database import Database
from homeserver.storage.push import Pusher

REQUIRED = ("app_display_name", "device_display_name", "lang", "data")
MAX_APP_ID_CHARS = 64
MAX_PUSHKEY_BYTES = 512


def render(pusher: Pusher) -> dict[str, Any]:
    """A pusher as GET /pushers lists it."""
    rendered: dict[str, Any] = {
        "pushkey": pusher.pushkey,
        "kind": pusher.kind,
        "app_id": pusher.app_id,
        "app_display_name": pusher.app_display_name,
        "device_display_name": pusher.device_display_name,
        "lang": pusher.lang,
        "data": pusher.data,
    }
    if pusher.profile_tag is not None:
        rendered["profile_tag"] = pusher.profile_tag
    return rendered


def _string(body: dict[str, Any], name: str) -> str:
    value = body[name]
    if not isinstance(value, str):
        raise bad_json(f"'{name}' must be a string")
    return value


def _key(body: dict[str, Any]) -> tuple[str, str]:
    missing = [k for k in ("app_id", "pushkey") if k not in body]
    if missing:
        raise missing_param(f"Missing parameters: {', '.join(missing)}")
    app_id, pushkey = _string(body, "app_id"), _string(body, "pushkey")
    if not app_id or len(app_id) > MAX_APP_ID_CHARS:
        raise invalid_param(f"'app_id' must be 1 to {MAX_APP_ID_CHARS} characters")
    if not pushkey or len(pushkey.encode("utf-8")) > MAX_PUSHKEY_BYTES:
        raise invalid_param(f"'pushkey' must be 1 to {MAX_PUSHKEY_BYTES} bytes")
    return app_id, pushkey


def check_http_data(data: dict[str, Any]) -> None:
    if "url" not in data:
        raise missing_param("'data.url' is required for an http pusher")
    url = data["url"]
    if not isinstance(url, str):
        raise bad_json("'data.url' must be a string")
    problem = check_url(url)
    if problem is not None:
        raise invalid_param(problem)
    fmt = data.get("format")
    if fmt is not None and not isinstance(fmt, str):
        raise bad_json("'data.format' must be a string")


class PushersService:
    def __init__(self, db: Database, pool: PusherPool, clock: Clock) -> None:
        self.db = db
        self.pool = pool
        self.clock = clock

    async def list(self, user_id: str) -> list[dict[str, Any]]:
        async with self.db.read() as conn:
            return [render(p) for p in await store.get_pushers(conn, user_id)]

    async def set(self, requester: Requester, body: dict[str, Any]) -> None:
        if "kind" not in body:
            raise missing_param("Missing parameters: kind")
        kind = body["kind"]
        if kind is not None and not isinstance(kind, str):
            raise bad_json("'kind' must be a string or null")
        app_id, pushkey = _key(body)
        user_id = requester.user_id
        if kind is None:
            async with self.db.write() as conn:
                await store.delete_pusher(conn, user_id, app_id, pushkey)
            self.pool.removed((user_id, app_id, pushkey))
            return
        settings = _settings(body, kind)
        pusher, taken = await self._store(requester, app_id, pushkey, kind, settings)
        for other in taken:
            self.pool.removed(other.key)
        self.pool.added(pusher)

    async def _store(
        self, requester: Requester, app_id: str, pushkey: str, kind: str, settings: _Settings
    ) -> tuple[Pusher, Sequence[Pusher]]:
        """Store the pusher; with ``append`` false, other users' pushers with the same
        app ID and pushkey are deleted.  The pusher, and the other users' pushers taken."""
        user_id = requester.user_id
        async with self.db.write() as conn:
            existing = await store.get_pusher(conn, user_id, app_id, pushkey)
            pusher = Pusher(
                user_id=user_id,
                app_id=app_id,
                pushkey=pushkey,
                kind=kind,
                app_display_name=settings.app_display_name,
                device_display_name=settings.device_display_name,
                profile_tag=settings.profile_tag,
                lang=settings.lang,
                data=settings.data,
                # Another device may edit a pusher: it stays with the device that set it.
                device_id=existing.device_id if existing else requester.device_id,
                pushkey_ts=self.clock.now_ms(),
                # It pushes what happens from now on.
                last_stream_ordering=self.db.stream.current,
            )
            if not settings.append:
                taken = [
                    p
                    for p in await store.get_pushers_by_key(conn, app_id, pushkey)
                    if p.user_id != user_id
                ]
                await store.delete_pushers_of_others(conn, app_id, pushkey, user_id)
            else:
                taken = []
            await store.upsert_pusher(conn, pusher)
        return pusher, taken


@dataclass(frozen=True)
class _Settings:
    """What ``/pushers/set`` sets on a pusher, checked."""

    app_display_name: str
    device_display_name: str
    lang: str
    profile_tag: str | None
    data: dict[str, Any]
    append: bool


def _settings(body: dict[str, Any], kind: str) -> _Settings:
    missing = [k for k in REQUIRED if k not in body]
    if missing:
        raise missing_param(f"Missing parameters: {', '.join(missing)}")
    app_display_name = _string(body, "app_display_name")
    device_display_name = _string(body, "device_display_name")
    lang = _string(body, "lang")
    profile_tag = _string(body, "profile_tag") if body.get("profile_tag") is not None else None
    data = body["data"]
    if not isinstance(data, dict):
        raise bad_json("'data' must be an object")
    append = body.get("append", False)
    if not isinstance(append, bool):
        raise bad_json("'append' must be a boolean")
    if kind == "http":
        check_http_data(data)
    elif kind == "email":
        raise MatrixError(
            400,
            "M_THREEPID_NOT_FOUND",
            "Email not found: email pushers need a verified email address (3PID) on the "
            "account, and this server keeps none",
        )
    else:
        raise invalid_param(f"Unknown pusher kind {kind!r}")
    return _Settings(app_display_name, device_display_name, lang, profile_tag, data, append)
