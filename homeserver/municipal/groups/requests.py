"""The running node's side of ``kairan group``: it reads the requests the command stored,
claims each, carries it out with :class:`GroupService` and stores the outcome.

Why not let the command make the rooms itself: a node allocates stream positions in its
own process (``events.stream_ordering`` is a primary key), so a second process writing
room events into the same database collides with the running node (on SQLite and on
PostgreSQL alike).  The command therefore writes a request row and the node, the only
writer of room events, does the work, as ``kairan consortium apply`` hands documents over.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from homeserver.common.errors import MatrixError
from homeserver.municipal.groups import storage
from homeserver.municipal.groups.service import GroupService

log = logging.getLogger(__name__)


class RequestRunner:
    def __init__(self, service: GroupService, poll_seconds: float) -> None:
        self.service = service
        self.poll_seconds = poll_seconds
        self._task: asyncio.Task[None] | None = None

    async def start(self, node: Any) -> None:
        self.service.node = node
        self._task = asyncio.create_task(self._loop(), name="groups-requests")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_pending()
            except Exception:
                log.exception("reading group requests failed")
            await asyncio.sleep(self.poll_seconds)

    async def run_pending(self) -> None:
        async with self.service.db.read() as conn:
            pending = await storage.pending_requests(conn)
        for request_id, body in pending:
            async with self.service.db.write() as conn:
                if not await storage.claim(conn, request_id):
                    continue  # withdrawn by the command meanwhile
            state, result = await self._run(body)
            async with self.service.db.write() as conn:
                await storage.finish(conn, request_id, state, json.dumps(result))
            log.info("group request %s: %s", request_id, state)

    async def _run(self, text: str) -> tuple[str, dict[str, Any]]:
        try:
            body = json.loads(text)
            action = body.get("action")
            if action == "create":
                group = await self.service.create(
                    body.get("consortium"), body.get("name"), topic=body.get("topic"),
                    rooms=body.get("rooms"), creator=body.get("creator"),
                )  # fmt: skip
                return storage.DONE, group
            if action == "add_room":
                room = await self.service.add_room(str(body.get("space_id")), body.get("name"))
                return storage.DONE, room
            return storage.FAILED, {"errcode": "M_UNRECOGNIZED", "error": f"no action {action}"}
        except MatrixError as e:
            return storage.FAILED, {"errcode": e.errcode, "error": e.message}
        except Exception:
            log.exception("a group request failed")
            return storage.FAILED, {"errcode": "M_UNKNOWN", "error": "failed (see the node's log)"}
