"""The sample feature's service: one object per extension point, sharing its state."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Mapping, Sequence
from typing import Any

from homeserver.common.errors import MatrixError, forbidden
from homeserver.extensions import (
    ClientInfo,
    EventPolicy,
    FeatureContext,
    LoginAttempt,
    LoginCheck,
    ProposedEvent,
    Upload,
    UploadDecision,
)
from homeserver.extensions.points import Requester
from tests.homeserver.extensions.sample import rules, storage

PENDING = "JP_KAIRAN_DEVICE_PENDING"


class SamplePolicy(EventPolicy):
    def __init__(self, service: SampleService) -> None:
        self.service = service

    async def check_event(self, event: ProposedEvent) -> None:
        self.service.asked.append(("check_event", event.type, event.origin))
        word = rules.blocked_word(event.content, self.service.blocked_words)
        if word is not None:
            raise forbidden(f"sample: the word {word} is not allowed here")

    async def user_may_create_room(self, user_id: str, request: Mapping[str, Any]) -> None:
        if request.get("name") == "forbidden room":
            raise forbidden("sample: no such rooms")

    async def user_may_invite(self, inviter: str, invitee: str, room_id: str) -> None:
        if rules.localpart(invitee).startswith("noinvite"):
            raise forbidden(f"sample: {invitee} may not be invited")

    async def user_may_join_room(self, user_id: str, room_id: str, is_invited: bool) -> None:
        if rules.localpart(user_id).startswith("nojoin") and not is_invited:
            raise forbidden("sample: invited users only")

    async def user_may_join_via(self, user_id: str, room_id: str, servers: Sequence[str]) -> None:
        if servers and all(s in self.service.blocked_servers for s in servers):
            raise forbidden("sample: every server of that room is blocked")


class SamplePeers:
    def __init__(self, service: SampleService) -> None:
        self.service = service

    def inbound(self, origin: str) -> str | None:
        return "blocked by the sample" if origin in self.service.blocked_servers else None

    def outbound(self, destination: str) -> str | None:
        return "blocked by the sample" if destination in self.service.blocked_servers else None


class SampleListener:
    def __init__(self) -> None:
        self.types: collections.Counter[str] = collections.Counter()

    def on_event(self, room_id: str, event_id: str, pdu: Mapping[str, Any]) -> None:
        self.types[str(pdu.get("type"))] += 1


class SampleUploads:
    async def check_upload(self, upload: Upload) -> UploadDecision:
        data = await asyncio.to_thread(upload.path.read_bytes)
        if b"QUARANTINE-ME" in data:
            return UploadDecision.quarantine("sample: this file looks dangerous")
        if upload.content_type == "text/plain":
            cleaned = upload.path.with_suffix(".clean")
            await asyncio.to_thread(cleaned.write_bytes, data.upper())
            return UploadDecision.replace(cleaned, filename="cleaned.txt")
        return UploadDecision.accept()


class SampleLogins(LoginCheck):
    def __init__(self) -> None:
        self.pending: set[tuple[str, str]] = set()
        self.zones: list[str] = []

    async def check_login(self, attempt: LoginAttempt) -> None:
        self.zones.append(attempt.client.zone)
        if attempt.device_id == "LOSTPHONE":
            raise forbidden("sample: this device was reported lost")

    async def logged_in(self, requester: Requester, attempt: LoginAttempt) -> None:
        if attempt.display_name == "needs approval":
            self.pending.add((requester.user_id, requester.device_id))

    async def check_access(self, requester: Requester, client: ClientInfo) -> None:
        if (requester.user_id, requester.device_id) in self.pending:
            raise MatrixError(403, PENDING, "This device waits for an administrator's approval")


class SampleUsers:
    """A user directory source: one extra user for 'サンプル', a failure for 'boom', a
    duplicate for 'alice'."""

    async def search_users(self, requester: str, term: str, limit: int) -> list[dict[str, Any]]:
        if term == "boom":
            raise RuntimeError("the sample's directory is down")
        if term == "alice":  # the node finds its own alice: she is not listed twice
            return [{"user_id": requester, "display_name": "a duplicate"}]
        if term != "サンプル":
            return []
        return [{"user_id": "@staff:elsewhere.example", "display_name": "サンプル職員"}, {"x": 5}]


class SampleService:
    def __init__(self, context: FeatureContext) -> None:
        self.context = context
        self.db = context.db
        self.blocked_words = tuple(context.settings.get("blocked_words", ()))
        self.blocked_servers = set(context.settings.get("blocked_servers", ()))
        self.asked: list[tuple[str, str, str | None]] = []
        self.policy = SamplePolicy(self)
        self.peers = SamplePeers(self)
        self.seen = SampleListener()
        self.uploads = SampleUploads()
        self.logins = SampleLogins()
        self.users = SampleUsers()
        self.node: Any = None
        self.stopped = False

    async def sync_extension(
        self,
        requester: Requester,
        since: int | None,
        upto: int,
        response: dict[str, Any],
        joined: Sequence[str],
    ) -> None:
        response["jp.kairan.sample"] = {"joined": len(joined), "initial": since is None}

    async def start(self, node: Any) -> None:
        self.node = node

    async def stop(self) -> None:
        self.stopped = True

    async def put_note(self, user_id: str, key: str, value: str) -> None:
        async with self.db.write() as conn:
            await storage.put_note(conn, user_id, key, value)

    async def get_note(self, user_id: str, key: str) -> str | None:
        async with self.db.read() as conn:
            return await storage.get_note(conn, user_id, key)

    async def stats(self) -> dict[str, Any]:
        async with self.db.read() as conn:
            notes = await storage.count_notes(conn)
        return {"notes": notes, "events": dict(self.seen.types)}
