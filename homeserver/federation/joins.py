"""This node's side of joining, inviting and leaving across servers.

Remote join: ``/make_join`` on a resident server, sign the template, ``/send_join``, then
store the room's auth chain and state (verified and auth-checked) and the join itself.
Remote invite: the invitee's server countersigns the invite (``/invite`` v2).
Rejecting a remote invite: ``/make_leave`` and ``/send_leave`` via the inviting server.
"""

from __future__ import annotations

import logging
from typing import Any

from federation import events as engine_events
from federation import room_versions
from federation.client import (
    FederationClient,
    FederationClientError,
    RemoteError,
    federation_path,
)
from federation.errors import FederationError, MatrixError
from federation.identifiers import domain_of
from federation.sender import TransactionSender
from homeserver.federation.joining import JoinsUnderway
from homeserver.federation.pipeline import EventPipeline
from homeserver.federation.verify import DroppedEvent
from homeserver.rooms.cache import RoomCache
from homeserver.rooms.outliers import OutlierMemberships
from homeserver.rooms.restricted import RESTRICTED_JOIN_ERRORS
from homeserver.rooms.service import RoomService
from homeserver.storage import extremities as extremity_store
from homeserver.storage import rooms as room_store

log = logging.getLogger(__name__)


def _depth(pdu: dict[str, Any]) -> int:
    depth = pdu.get("depth", 0)
    return depth if isinstance(depth, int) else 0


class RemoteRooms:
    def __init__(
        self,
        rooms: RoomService,
        pipeline: EventPipeline,
        client: FederationClient,
        sender: TransactionSender,
        outliers: OutlierMemberships,
        underway: JoinsUnderway,
    ) -> None:
        self.rooms = rooms
        self.outliers = outliers
        self.underway = underway
        self.pipeline = pipeline
        self.client = client
        self.sender = sender
        self.server_name = rooms.server_name

    async def resolve_alias(self, alias: str) -> tuple[str, list[str]]:
        server = domain_of(alias)
        try:
            body = await self.client.request(
                server,
                "GET",
                federation_path("v1", "query", "directory"),
                query={"room_alias": alias},
            )
        except FederationClientError as e:
            raise MatrixError(404, "M_NOT_FOUND", f"Room alias {alias} not found: {e}") from None
        room_id, servers = body.get("room_id"), body.get("servers")
        if not isinstance(room_id, str):
            raise MatrixError(502, "M_UNKNOWN", f"{server} gave no room ID for {alias}")
        return room_id, [s for s in servers if isinstance(s, str)] if isinstance(
            servers, list
        ) else [server]

    async def join(
        self, user_id: str, room_id: str, servers: list[str], content: dict[str, Any]
    ) -> str:
        errors: list[str] = []
        restricted: MatrixError | None = None
        for server in dict.fromkeys(s for s in servers if s != self.server_name):
            try:
                with self.underway.joining(room_id):
                    return await self._join_via(server, user_id, room_id, content)
            except (FederationClientError, FederationError, MatrixError) as e:
                log.info("joining %s via %s failed: %s", room_id, server, e)
                errors.append(f"{server}: {e}")
                if isinstance(e, RemoteError) and e.status == 403:
                    raise MatrixError(403, "M_FORBIDDEN", e.message or "Join refused") from None
                if isinstance(e, RemoteError) and e.errcode in RESTRICTED_JOIN_ERRORS:
                    # Another server may be able to; if none is, the client hears why.
                    restricted = restricted or MatrixError(400, e.errcode, e.message)
        if restricted is not None:
            raise restricted
        raise MatrixError(
            404,
            "M_NOT_FOUND",
            "No server could help joining the room: " + "; ".join(errors)
            if errors
            else "No known servers for the room",
        )

    async def _join_via(
        self, server: str, user_id: str, room_id: str, content: dict[str, Any]
    ) -> str:
        made = await self.client.request(
            server, "GET", federation_path("v1", "make_join", room_id, user_id),
            query={"ver": list(room_versions.KNOWN_ROOM_VERSIONS)},
        )  # fmt: skip
        version = room_versions.get(str(made.get("room_version", "1")))
        template = made.get("event")
        if not isinstance(template, dict):
            raise MatrixError(502, "M_UNKNOWN", f"{server} sent no join template")
        if (
            template.get("type") != "m.room.member"
            or template.get("room_id") != room_id
            or template.get("sender") != user_id
            or template.get("state_key") != user_id
            or template.get("content", {}).get("membership") != "join"
        ):
            raise MatrixError(502, "M_UNKNOWN", f"{server} sent a malformed join template")
        pdu = {
            k: v
            for k, v in template.items()
            if k not in ("event_id", "signatures", "hashes", "unsigned", "origin")
        }
        pdu["content"] = {**content, **template["content"], "membership": "join"}
        pdu["origin_server_ts"] = self.rooms.clock.now_ms()
        signed = engine_events.sign_event(pdu, version, self.server_name, self.rooms.signing_key)
        event_id = engine_events.compute_event_id(signed, version)
        answer = await self.client.request(
            server,
            "PUT",
            federation_path("v2", "send_join", room_id, event_id),
            query={"omit_members": "false"},
            body=signed,
        )
        if not isinstance(answer, dict):
            raise MatrixError(502, "M_UNKNOWN", f"{server} sent a malformed send_join answer")
        returned = answer.get("event")
        if (
            isinstance(returned, dict)
            and engine_events.compute_event_id(returned, version) == event_id
        ):
            signed = returned  # countersigned by the resident for a restricted join
        room = await self.rooms.room(room_id)
        try:
            # The resident's copy must carry every signature the event needs (the
            # authorising server's for a restricted join).
            join = await self.pipeline.verify(
                signed, room or RoomCache(room_id, version, {}, None, [], 0)
            )
        except DroppedEvent as e:
            raise MatrixError(502, "M_UNKNOWN", f"{server} returned a bad join: {e}") from None
        if room is not None and any(domain_of(u) == self.server_name for u in room.joined()):
            # Already in the room (a restricted join no user here could authorise): the
            # join is an event of the room like any other, which the resident does not
            # send back to us.
            await self._receive_own_join(server, room, event_id, join.pdu)
        else:
            await self._store_joined_room(server, room_id, version, event_id, join.pdu, answer)
        return room_id

    async def _receive_own_join(
        self, server: str, room: RoomCache, event_id: str, join: dict[str, Any]
    ) -> None:
        errors = await self.pipeline.receive_verified(server, room, [(event_id, join)])
        stored = await self.rooms.get_event(event_id)
        if stored is None or stored.outlier or stored.rejected_reason:
            reason = (stored.rejected_reason if stored else None) or errors.get(event_id)
            raise MatrixError(403, "M_FORBIDDEN", f"The join was not accepted here: {reason}")

    async def _store_joined_room(
        self,
        server: str,
        room_id: str,
        version: room_versions.RoomVersion,
        event_id: str,
        join: dict[str, Any],
        answer: dict[str, Any],
    ) -> None:
        room = await self.rooms.room(room_id)
        new_room = room is None
        if room is None:
            room = RoomCache(room_id, version, {}, None, [], 0)
        async with room.lock:
            state_pdus = [p for p in answer.get("state", []) if isinstance(p, dict)]
            chain = [p for p in answer.get("auth_chain", []) if isinstance(p, dict)]
            if new_room:
                create = next((p for p in state_pdus if p.get("type") == "m.room.create"), None)
                if create is None:
                    raise MatrixError(502, "M_UNKNOWN", f"{server} sent no create event")
                async with self.rooms.db.write() as conn:
                    await room_store.insert_room(
                        conn,
                        room_id,
                        version.identifier,
                        str(create.get("sender")),
                        False,
                        self.rooms.clock.now_ms(),
                    )
                self.rooms.add_room(room)
            await self.pipeline.store_outliers(room, [*chain, *state_pdus])
            verified_state = await self.pipeline.verify_many(state_pdus, room)
            stored = await self.rooms.get_events(verified_state)
            state: dict[tuple[str, str], str] = {}
            for sid, event in stored.items():
                if event.state_key is not None and event.rejected_reason is None:
                    state[(event.type, event.state_key)] = sid
            if ("m.room.create", "") not in state:
                raise MatrixError(
                    502, "M_UNKNOWN", f"{server} sent a room state without a valid create event"
                )
            await self.pipeline.incoming.persist_join(room, event_id, join, state)
        log.info("joined %s via %s with %d state events", room_id, server, len(state))

    # ------------------------------------------------------------- history

    async def backfill(self, room: RoomCache, limit: int) -> bool:
        """Fetch older history from a server in the room; True when new events were stored."""
        async with self.rooms.db.read() as conn:
            extremities = await extremity_store.backward_extremities(conn, room.room_id)
        if not extremities:
            return False
        servers = sorted(
            {domain_of(u) for u, m in room.members.items() if m == "join"} - {self.server_name}
        )
        for server in servers:
            try:
                body = await self.client.request(
                    server,
                    "GET",
                    federation_path("v1", "backfill", room.room_id),
                    query={"v": extremities, "limit": str(max(1, min(limit, 100)))},
                )
            except FederationClientError as e:
                log.info("backfill from %s failed: %s", server, e)
                continue
            pdus = body.get("pdus") if isinstance(body, dict) else None
            if not isinstance(pdus, list):
                continue
            verified = await self.pipeline.verify_many(pdus, room)
            known = await self.rooms.get_events(verified)
            new = [(i, p) for i, p in verified.items() if i not in known or known[i].outlier]
            if not new:
                continue
            # Newest first gets the highest (least negative) position; stored oldest first.
            by_depth = sorted(new, key=lambda item: -_depth(item[1]))
            positions = {i: self.rooms.db.stream.backfill_position() for i, _ in by_depth}
            await self.pipeline.backfill(server, room, new, positions)
            return True
        return False

    # ------------------------------------------------------------- invites and leaves

    async def invite(self, room: RoomCache, event_id: str, pdu: dict[str, Any]) -> dict[str, Any]:
        """Have the invitee's server countersign an invite; returns the countersigned event."""
        target_server = domain_of(pdu["state_key"])
        state_ids = [room.state[(t, "")] for t in (
            "m.room.create", "m.room.join_rules", "m.room.name", "m.room.avatar",
            "m.room.canonical_alias", "m.room.encryption", "m.room.topic",
        ) if (t, "") in room.state]  # fmt: skip
        found = await self.rooms.get_events(state_ids)
        invite_state = [found[e].pdu for e in state_ids if e in found]
        sender_member = room.state.get(("m.room.member", pdu["sender"]))
        if sender_member:
            member = await self.rooms.get_event(sender_member)
            if member:
                invite_state.append(member.pdu)
        try:
            answer = await self.client.request(
                target_server, "PUT", federation_path("v2", "invite", room.room_id, event_id),
                body={"room_version": room.version.identifier, "event": pdu, "invite_room_state": invite_state},
            )  # fmt: skip
        except RemoteError as e:
            raise MatrixError(
                e.status if 400 <= e.status < 500 else 502, e.errcode or "M_UNKNOWN", e.message
            ) from None
        except FederationClientError as e:
            raise MatrixError(502, "M_UNKNOWN", f"Could not reach {target_server}: {e}") from None
        signed = answer.get("event") if isinstance(answer, dict) else None
        if (
            not isinstance(signed, dict)
            or engine_events.compute_event_id(signed, room.version) != event_id
        ):
            raise MatrixError(
                502, "M_UNKNOWN", f"{target_server} returned a different invite event"
            )
        verified = await self.pipeline.verify(signed, room)
        if target_server not in signed.get("signatures", {}):
            raise MatrixError(502, "M_UNKNOWN", f"{target_server} did not sign the invite")
        return verified.pdu

    async def reject_invite(self, user_id: str, room_id: str, invite_origin: str) -> None:
        made = await self.client.request(
            invite_origin, "GET", federation_path("v1", "make_leave", room_id, user_id)
        )
        version = room_versions.get(str(made.get("room_version", "1")))
        template = made.get("event")
        if not isinstance(template, dict) or template.get("state_key") != user_id:
            raise MatrixError(502, "M_UNKNOWN", f"{invite_origin} sent a malformed leave template")
        pdu = {
            k: v
            for k, v in template.items()
            if k not in ("event_id", "signatures", "hashes", "unsigned", "origin")
        }
        pdu["origin_server_ts"] = self.rooms.clock.now_ms()
        signed = engine_events.sign_event(pdu, version, self.server_name, self.rooms.signing_key)
        event_id = engine_events.compute_event_id(signed, version)
        await self.client.request(
            invite_origin,
            "PUT",
            federation_path("v2", "send_leave", room_id, event_id),
            body=signed,
        )
        await self.outliers.store_remote_leave(room_id, user_id, event_id, signed)
