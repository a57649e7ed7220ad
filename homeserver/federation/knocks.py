"""This node's side of knocking on a room it is not in: ``/make_knock`` on a resident
server, sign the template, ``/send_knock``; the knock is kept as an outlier with the room's
stripped state that the resident server answered (shown in /sync's ``knock`` section)."""

from __future__ import annotations

import logging
from typing import Any

from federation import events as engine_events
from federation import room_versions
from federation.client import FederationClient, FederationClientError, RemoteError
from federation.client import federation_path as path
from federation.errors import FederationError, UnsupportedRoomVersion
from homeserver.common.errors import MatrixError
from homeserver.rooms.outliers import OutlierMemberships
from homeserver.rooms.service import RoomService

log = logging.getLogger(__name__)
#: The room versions with knocking that this node can take part in.
KNOCK_VERSIONS = [v for v, rv in room_versions.KNOWN_ROOM_VERSIONS.items() if rv.knock]


class RemoteKnocks:
    def __init__(
        self, rooms: RoomService, client: FederationClient, outliers: OutlierMemberships
    ) -> None:
        self.rooms = rooms
        self.client = client
        self.outliers = outliers
        self.server_name = rooms.server_name

    async def knock(
        self, user_id: str, room_id: str, servers: list[str], content: dict[str, Any]
    ) -> None:
        """Knock through the first of ``servers`` that helps; a 403 of one is final."""
        errors: list[str] = []
        for server in dict.fromkeys(s for s in servers if s != self.server_name):
            try:
                await self._knock_via(server, user_id, room_id, content)
                return
            except RemoteError as e:
                log.info("knocking on %s via %s failed: %s", room_id, server, e)
                if e.status in (400, 403):
                    raise MatrixError(e.status, e.errcode or "M_FORBIDDEN", e.message) from None
                errors.append(f"{server}: {e}")
            except (FederationClientError, FederationError, MatrixError) as e:
                log.info("knocking on %s via %s failed: %s", room_id, server, e)
                errors.append(f"{server}: {e}")
        raise MatrixError(
            404, "M_NOT_FOUND",
            "No server could help knocking on the room: " + "; ".join(errors)
            if errors else "No known servers for the room",
        )  # fmt: skip

    async def _knock_via(
        self, server: str, user_id: str, room_id: str, content: dict[str, Any]
    ) -> None:
        made = await self.client.request(
            server, "GET", path("v1", "make_knock", room_id, user_id),
            query={"ver": KNOCK_VERSIONS},
        )  # fmt: skip
        try:
            version = room_versions.get(str(made.get("room_version")))
        except UnsupportedRoomVersion:
            raise MatrixError(502, "M_UNKNOWN", f"{server} named an unknown room version") from None
        template = made.get("event")
        if not isinstance(template, dict) or not (
            template.get("type") == "m.room.member"
            and template.get("room_id") == room_id
            and template.get("sender") == user_id
            and template.get("state_key") == user_id
            and isinstance(template.get("content"), dict)
            and template["content"].get("membership") == "knock"
        ):
            raise MatrixError(502, "M_UNKNOWN", f"{server} sent a malformed knock template")
        pdu = {
            k: v
            for k, v in template.items()
            if k not in ("event_id", "signatures", "hashes", "unsigned", "origin")
        }
        pdu["content"] = {**content, "membership": "knock"}
        pdu["origin_server_ts"] = self.rooms.clock.now_ms()
        signed = engine_events.sign_event(pdu, version, self.server_name, self.rooms.signing_key)
        event_id = engine_events.compute_event_id(signed, version)
        answer = await self.client.request(
            server, "PUT", path("v1", "send_knock", room_id, event_id), body=signed
        )
        state = answer.get("knock_room_state") if isinstance(answer, dict) else None
        stripped = [e for e in state if isinstance(e, dict)] if isinstance(state, list) else []
        await self.outliers.store_remote_knock(
            room_id, version.identifier, event_id, signed, stripped, server
        )
