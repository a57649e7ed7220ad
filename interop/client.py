"""A tiny Matrix Client-Server API client over aiohttp, for the interop suite.

Only what the scenarios need, every call one HTTP request (``/register`` two: it asks for
the session first).  Errors are :class:`MatrixError` with the HTTP status and errcode.
TLS is verified against the harness's CA.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import ssl
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp

JsonDict = dict[str, Any]

#: Simplified Sliding Sync (MSC4186) as Synapse serves it.
SLIDING_SYNC_PATH = "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync"


class MatrixError(Exception):
    """A request answered with a non-2xx status."""

    def __init__(self, method: str, path: str, status: int, body: Any) -> None:
        self.status = status
        self.body = body
        self.errcode = body.get("errcode", "") if isinstance(body, dict) else ""
        self.error = body.get("error", "") if isinstance(body, dict) else str(body)[:200]
        super().__init__(f"{method} {path} -> {status} {self.errcode}: {self.error}")


def _q(value: str) -> str:
    return quote(value, safe="")


_txn_counter = itertools.count()


class Client:
    """One user on one homeserver; ``async with`` closes the HTTP session."""

    def __init__(
        self,
        base_url: str,
        ca_file: Path | None = None,
        *,
        name: str = "",
        request_timeout: float = 90.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.name = name
        self.user_id = ""
        self.device_id = ""
        self.access_token = ""
        context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=context, limit=20),
            timeout=aiohttp.ClientTimeout(total=request_timeout),
        )

    async def close(self) -> None:
        await self._session.close()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<Client {self.user_id or self.name} @ {self.base_url}>"

    # -- plumbing

    async def request(
        self,
        method: str,
        path: str,
        body: JsonDict | None = None,
        *,
        params: dict[str, str] | None = None,
        auth: bool = True,
        retries_on_429: int = 20,
    ) -> JsonDict:
        """One JSON request to ``/_matrix/client/v3`` + ``path`` (or an absolute path)."""
        url = self.base_url + (path if path.startswith("/_matrix") else "/_matrix/client/v3" + path)
        headers = (
            {"Authorization": f"Bearer {self.access_token}"} if auth and self.access_token else {}
        )
        for _attempt in range(retries_on_429 + 1):
            async with self._session.request(
                method, url, json=body, params=params, headers=headers
            ) as response:
                text = await response.text()
                try:
                    data: Any = json.loads(text) if text else {}
                except ValueError:
                    data = text
                if response.status == 429 and isinstance(data, dict):
                    delay_ms = data.get("retry_after_ms", 200)
                    await asyncio.sleep(min(float(delay_ms), 2000.0) / 1000.0)
                    continue
                if response.status >= 400:
                    raise MatrixError(method, path, response.status, data)
                if not isinstance(data, dict):
                    raise MatrixError(method, path, response.status, {"error": "not a JSON object"})
                return data
        raise MatrixError(method, path, 429, {"errcode": "M_LIMIT_EXCEEDED"})

    # -- accounts

    async def register(self, username: str, password: str = "interop-password") -> str:
        """Register with ``m.login.dummy`` (asking for the session first); returns the user ID."""
        body: JsonDict = {"username": username, "password": password, "inhibit_login": False}
        try:
            data = await self.request("POST", "/register", body, auth=False)
        except MatrixError as e:
            if e.status != 401 or not isinstance(e.body, dict):
                raise
            auth: JsonDict = {"type": "m.login.dummy"}
            if "session" in e.body:
                auth["session"] = e.body["session"]
            data = await self.request("POST", "/register", {**body, "auth": auth}, auth=False)
        self._logged_in(data)
        return self.user_id

    async def login(self, username: str, password: str = "interop-password") -> str:
        data = await self.request(
            "POST",
            "/login",
            {
                "type": "m.login.password",
                "identifier": {"type": "m.id.user", "user": username},
                "password": password,
            },
            auth=False,
        )
        self._logged_in(data)
        return self.user_id

    def _logged_in(self, data: JsonDict) -> None:
        self.user_id = data["user_id"]
        self.access_token = data["access_token"]
        self.device_id = data.get("device_id", "")

    # -- rooms

    async def create_room(self, **body: Any) -> str:
        data = await self.request("POST", "/createRoom", body)
        room_id: str = data["room_id"]
        return room_id

    async def join(self, room: str, via: list[str] | None = None) -> str:
        """Join a room ID or alias; ``via`` are server names to join through (remote rooms)."""
        params = [("server_name", s) for s in via or []]
        query = "&".join(f"{k}={_q(v)}" for k, v in params)
        path = f"/join/{_q(room)}" + (f"?{query}" if query else "")
        data = await self.request("POST", path, {})
        room_id: str = data["room_id"]
        return room_id

    async def leave(self, room_id: str) -> None:
        await self.request("POST", f"/rooms/{_q(room_id)}/leave", {})

    async def invite(self, room_id: str, user_id: str) -> None:
        await self.request("POST", f"/rooms/{_q(room_id)}/invite", {"user_id": user_id})

    async def kick(self, room_id: str, user_id: str, reason: str = "") -> None:
        await self.request(
            "POST", f"/rooms/{_q(room_id)}/kick", {"user_id": user_id, "reason": reason}
        )

    async def ban(self, room_id: str, user_id: str, reason: str = "") -> None:
        await self.request(
            "POST", f"/rooms/{_q(room_id)}/ban", {"user_id": user_id, "reason": reason}
        )

    async def unban(self, room_id: str, user_id: str) -> None:
        await self.request("POST", f"/rooms/{_q(room_id)}/unban", {"user_id": user_id})

    # -- events

    async def send(self, room_id: str, event_type: str, content: JsonDict) -> str:
        txn = f"t{time.time_ns()}-{next(_txn_counter)}-{uuid.uuid4().hex[:6]}"
        data = await self.request(
            "PUT", f"/rooms/{_q(room_id)}/send/{_q(event_type)}/{txn}", content
        )
        event_id: str = data["event_id"]
        return event_id

    async def send_text(self, room_id: str, body: str) -> str:
        return await self.send(room_id, "m.room.message", {"msgtype": "m.text", "body": body})

    async def send_state(
        self, room_id: str, event_type: str, content: JsonDict, state_key: str = ""
    ) -> str:
        data = await self.request(
            "PUT", f"/rooms/{_q(room_id)}/state/{_q(event_type)}/{_q(state_key)}", content
        )
        event_id: str = data["event_id"]
        return event_id

    async def state(self, room_id: str) -> list[JsonDict]:
        url = f"/rooms/{_q(room_id)}/state"
        # /state answers a JSON array: fetch it raw.
        full = self.base_url + "/_matrix/client/v3" + url
        headers = {"Authorization": f"Bearer {self.access_token}"}
        async with self._session.get(full, headers=headers) as response:
            data = await response.json(content_type=None)
            if response.status >= 400:
                raise MatrixError("GET", url, response.status, data)
        if not isinstance(data, list):
            raise MatrixError("GET", url, 200, {"error": "state is not a JSON array"})
        return data

    async def state_event(
        self, room_id: str, event_type: str, state_key: str = ""
    ) -> JsonDict | None:
        """The content of one state event, or None when the room has none (404)."""
        try:
            return await self.request(
                "GET", f"/rooms/{_q(room_id)}/state/{_q(event_type)}/{_q(state_key)}"
            )
        except MatrixError as e:
            if e.status == 404:
                return None
            raise

    async def membership(self, room_id: str, user_id: str) -> str | None:
        content = await self.state_event(room_id, "m.room.member", user_id)
        return None if content is None else content.get("membership")

    async def joined_members(self, room_id: str) -> set[str]:
        data = await self.request("GET", f"/rooms/{_q(room_id)}/joined_members")
        return set(data.get("joined", {}))

    async def joined_rooms(self) -> list[str]:
        data = await self.request("GET", "/joined_rooms")
        rooms: list[str] = data.get("joined_rooms", [])
        return rooms

    async def get_event(self, room_id: str, event_id: str) -> JsonDict:
        return await self.request("GET", f"/rooms/{_q(room_id)}/event/{_q(event_id)}")

    async def redact(self, room_id: str, event_id: str, reason: str = "") -> str:
        txn = f"r{time.time_ns()}-{next(_txn_counter)}"
        data = await self.request(
            "PUT",
            f"/rooms/{_q(room_id)}/redact/{_q(event_id)}/{txn}",
            {"reason": reason} if reason else {},
        )
        redaction_id: str = data["event_id"]
        return redaction_id

    async def messages(
        self,
        room_id: str,
        *,
        from_token: str | None = None,
        direction: str = "b",
        limit: int = 20,
        filter_json: JsonDict | None = None,
    ) -> JsonDict:
        params = {"dir": direction, "limit": str(limit)}
        if from_token is not None:
            params["from"] = from_token
        if filter_json is not None:
            params["filter"] = json.dumps(filter_json)
        return await self.request("GET", f"/rooms/{_q(room_id)}/messages", params=params)

    async def all_messages(
        self, room_id: str, *, page: int = 50, max_pages: int = 40
    ) -> list[JsonDict]:
        """The room's timeline from the start to now (oldest first), paginating backwards."""
        events: list[JsonDict] = []
        token: str | None = None
        for _ in range(max_pages):
            data = await self.messages(room_id, from_token=token, limit=page)
            chunk = data.get("chunk", [])
            events.extend(chunk)
            token = data.get("end")
            if not chunk or token is None:
                break
        events.reverse()
        return events

    # -- sync and ephemeral events

    async def sync(
        self,
        since: str | None = None,
        *,
        timeout_ms: int = 0,
        filter_json: JsonDict | None = None,
        full_state: bool = False,
    ) -> JsonDict:
        params = {"timeout": str(timeout_ms)}
        if since:
            params["since"] = since
        if filter_json is not None:
            params["filter"] = json.dumps(filter_json)
        if full_state:
            params["full_state"] = "true"
        return await self.request("GET", "/sync", params=params)

    async def sliding_sync(
        self, body: JsonDict, *, pos: str | None = None, timeout_ms: int | None = None
    ) -> JsonDict:
        """One Simplified Sliding Sync request; ``pos`` and ``timeout`` are query
        parameters, as Synapse (and so Element X) has them."""
        params: dict[str, str] = {}
        if pos is not None:
            params["pos"] = pos
        if timeout_ms is not None:
            params["timeout"] = str(timeout_ms)
        return await self.request("POST", SLIDING_SYNC_PATH, body, params=params)

    async def set_account_data(self, event_type: str, content: JsonDict) -> None:
        path = f"/user/{_q(self.user_id)}/account_data/{_q(event_type)}"
        await self.request("PUT", path, content)

    async def typing(self, room_id: str, typing: bool, timeout_ms: int = 30000) -> None:
        body: JsonDict = {"typing": typing}
        if typing:
            body["timeout"] = timeout_ms
        await self.request("PUT", f"/rooms/{_q(room_id)}/typing/{_q(self.user_id)}", body)

    async def receipt(self, room_id: str, event_id: str, receipt_type: str = "m.read") -> None:
        await self.request(
            "POST", f"/rooms/{_q(room_id)}/receipt/{_q(receipt_type)}/{_q(event_id)}", {}
        )
