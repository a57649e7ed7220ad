"""A small Client-Server API client for tests (raw HTTP, so tests see exact responses)."""

from __future__ import annotations

import itertools
from typing import Any

import aiohttp

_txn = itertools.count()


class Response:
    def __init__(self, status: int, body: Any, headers: dict[str, str]) -> None:
        self.status = status
        self.body = body
        self.headers = headers

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.body!r}>"


class Client:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        # Test nodes serving HTTPS use self-signed certificates.
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=False))

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.session.close()

    async def close(self) -> None:
        await self.session.close()

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        token: str | None = None,
        params: dict[str, str] | None = None,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        all_headers = dict(headers or {})
        if token:
            all_headers["Authorization"] = f"Bearer {token}"
        async with self.session.request(
            method,
            self.base_url + path,
            json=body if data is None and body is not None else None,
            data=data,
            params=params,
            headers=all_headers,
        ) as response:
            raw = await response.read()
            content_type = response.headers.get("Content-Type", "")
            parsed: Any = raw
            if content_type.startswith("application/json"):
                import json

                parsed = json.loads(raw) if raw else None
            return Response(response.status, parsed, dict(response.headers))

    async def ok(self, method: str, path: str, body: Any = None, **kwargs: Any) -> Any:
        response = await self.request(method, path, body, **kwargs)
        assert response.status == 200, (method, path, response)
        return response.body

    async def register(self, username: str, password: str = "correct horse") -> User:
        body = await self.ok(
            "POST",
            "/_matrix/client/v3/register",
            {"username": username, "password": password, "auth": {"type": "m.login.dummy"}},
        )
        return User(self, body["user_id"], body["access_token"], body["device_id"])


class User:
    def __init__(self, client: Client, user_id: str, token: str, device_id: str) -> None:
        self.client = client
        self.user_id = user_id
        self.token = token
        self.device_id = device_id

    async def request(self, method: str, path: str, body: Any = None, **kwargs: Any) -> Response:
        return await self.client.request(method, path, body, token=self.token, **kwargs)

    async def ok(self, method: str, path: str, body: Any = None, **kwargs: Any) -> Any:
        return await self.client.ok(method, path, body, token=self.token, **kwargs)

    async def create_room(self, **body: Any) -> str:
        result = await self.ok("POST", "/_matrix/client/v3/createRoom", body)
        return str(result["room_id"])

    async def send(self, room_id: str, body: str, event_type: str = "m.room.message") -> str:
        txn = next(_txn)
        result = await self.ok(
            "PUT",
            f"/_matrix/client/v3/rooms/{room_id}/send/{event_type}/t{txn}",
            {"msgtype": "m.text", "body": body},
        )
        return str(result["event_id"])

    async def join(self, room_id: str) -> None:
        await self.ok("POST", f"/_matrix/client/v3/join/{room_id}", {})

    async def invite(self, room_id: str, user_id: str) -> None:
        await self.ok("POST", f"/_matrix/client/v3/rooms/{room_id}/invite", {"user_id": user_id})

    async def sync(self, since: str | None = None, timeout: int = 0, **params: str) -> Any:
        query = dict(params)
        if since:
            query["since"] = since
        query["timeout"] = str(timeout)
        return await self.ok("GET", "/_matrix/client/v3/sync", params=query)


__all__ = ["Client", "Response", "User"]
