"""Reporting events, rooms and users to the server's admins (spec "Reporting content"), as
Synapse's ``synapse/rest/client/reporting.py`` and ``handlers/reports.py`` take them, and
the admins' list of the reports (Synapse's ``event_reports`` admin API shape).

- An event: only one the reporter may see (404 ``M_NOT_FOUND`` otherwise, also for a room
  they are not in: nobody learns whether an event exists); ``reason`` optional, ``score``
  an integer if given (the spec dropped it in v1.x; Synapse still checks it).
- A room: 404 for a room this node does not know; the reporter need not be in it.
- A user: a user of another server or one who does not exist is answered 200 and not
  stored (as Synapse: it hides who exists).

A reason is at most :data:`MAX_REASON` characters (400 ``M_BAD_JSON``), and each user may
file :data:`REPORT_RATE` reports (429 ``M_LIMIT_EXCEEDED`` beyond).
"""

from __future__ import annotations

from typing import Any

from federation.identifiers import is_valid_user_id
from homeserver.accounts.throttle import Buckets
from homeserver.common.clock import Clock
from homeserver.common.errors import MatrixError, bad_json, not_found
from homeserver.config import Rate
from homeserver.rooms.ports import Accounts
from homeserver.rooms.reader import RoomReader
from homeserver.rooms.state_reads import RoomStateReads
from homeserver.storage import reports as report_store
from homeserver.storage.reports import Report

MAX_REASON = 1000
#: Synapse's ``rc_reports`` default: one a second, bursts of five.
REPORT_RATE = Rate(per_second=1.0, burst_count=5)


def check_reason(body: dict[str, Any], *, required: bool) -> str | None:
    if "reason" not in body and not required:
        return None
    reason = body.get("reason")
    if not isinstance(reason, str):
        if "reason" not in body:
            raise MatrixError(400, "M_MISSING_PARAM", "Missing reason")
        raise bad_json("reason must be a string")
    if len(reason) > MAX_REASON:
        raise bad_json(f"reason must be at most {MAX_REASON} characters")
    return reason


def check_score(body: dict[str, Any]) -> int | None:
    score = body.get("score")
    if score is None:
        return None
    if not isinstance(score, int) or isinstance(score, bool):
        raise bad_json("score must be an integer")
    return score


class ReportService:
    def __init__(
        self,
        reader: RoomReader,
        room_state: RoomStateReads,
        accounts: Accounts,
        clock: Clock,
        rate: Rate = REPORT_RATE,
    ) -> None:
        self.reader = reader
        self.db = reader.db
        self.room_state = room_state
        self.accounts = accounts
        self.clock = clock
        self.limits = Buckets(rate, clock)

    # ------------------------------------------------------------- filing

    async def report_event(
        self, user_id: str, room_id: str, event_id: str, body: dict[str, Any]
    ) -> None:
        reason = check_reason(body, required=False)
        score = check_score(body)
        self.limits.check(user_id)
        try:
            await self.room_state.event(user_id, room_id, event_id)
        except MatrixError as e:
            if e.status in (403, 404):  # not in the room, or not visible: all alike
                raise not_found(
                    "Unable to report event: it does not exist or you aren't able to see it."
                ) from None
            raise
        await self._add(
            "event", user_id, room_id=room_id, event_id=event_id, reason=reason, score=score
        )

    async def report_room(self, user_id: str, room_id: str, body: dict[str, Any]) -> None:
        reason = check_reason(body, required=True)
        self.limits.check(user_id)
        if await self.reader.room(room_id) is None:
            raise not_found("Room does not exist")
        await self._add("room", user_id, room_id=room_id, reason=reason)

    async def report_user(self, user_id: str, target: str, body: dict[str, Any]) -> None:
        reason = check_reason(body, required=True)
        self.limits.check(user_id)
        if not is_valid_user_id(target) or not self.accounts.is_local(target):
            return  # hidden, as Synapse: nothing to do about other servers' users
        if await self.accounts.get_user(target) is None:
            return  # hides who exists
        await self._add("user", user_id, target_user_id=target, reason=reason)

    async def _add(self, kind: str, user_id: str, **fields: Any) -> None:
        async with self.db.write() as conn:
            await report_store.add_report(conn, kind, user_id, self.clock.now_ms(), **fields)

    # ------------------------------------------------------------- the admins' list

    async def list(
        self,
        kind: str,
        start: int,
        limit: int,
        *,
        newest_first: bool = True,
        user_id: str | None = None,
        room_id: str | None = None,
        target_user_id: str | None = None,
    ) -> tuple[list[dict[str, Any]], int]:
        async with self.db.read() as conn:
            found, total = await report_store.list_reports(
                conn, kind, start=start, limit=limit, newest_first=newest_first,
                reporter=user_id, room_id=room_id, target_user_id=target_user_id,
            )  # fmt: skip
        return [await self.render(r) for r in found], total

    async def get(self, kind: str, report_id: int) -> dict[str, Any]:
        async with self.db.read() as conn:
            found = await report_store.get_report(conn, kind, report_id)
        if found is None:
            raise not_found("Report not found")
        rendered = await self.render(found)
        if found.event_id is not None:
            event = await self.reader.get_event(found.event_id)
            rendered["event_json"] = event.pdu if event is not None else None
        return rendered

    async def delete(self, kind: str, report_id: int) -> None:
        async with self.db.write() as conn:
            if not await report_store.delete_report(conn, kind, report_id):
                raise not_found("Report not found")

    async def render(self, report: Report) -> dict[str, Any]:
        """A report as Synapse's admin API shows it (room name and canonical alias from the
        room's current state; an event report's sender and score)."""
        entry: dict[str, Any] = {
            "id": report.id,
            "received_ts": report.received_ts,
            "user_id": report.reporter,
            "reason": report.reason,
        }
        if report.kind == "user":
            entry["target_user_id"] = report.target_user_id
            return entry
        entry["room_id"] = report.room_id
        room = await self.reader.room(report.room_id) if report.room_id else None
        name = alias = None
        if room is not None:
            name = (await self.reader.state_content(room, "m.room.name")).get("name")
            alias = (await self.reader.state_content(room, "m.room.canonical_alias")).get("alias")
        entry["name"] = name if isinstance(name, str) else None
        entry["canonical_alias"] = alias if isinstance(alias, str) else None
        if report.kind == "event":
            entry["event_id"] = report.event_id
            entry["score"] = report.score
            event = await self.reader.get_event(report.event_id) if report.event_id else None
            entry["sender"] = event.sender if event is not None else None
        return entry
