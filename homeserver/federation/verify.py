"""Checks on receipt 1-3 (format, signatures, content hash) and server ACLs."""

from __future__ import annotations

import fnmatch
import ipaddress
import logging
from collections.abc import Iterable
from typing import Any

from federation import events as engine_events
from federation.errors import FederationError
from federation.keyring import KeyRing
from federation.room_versions import RoomVersion
from homeserver.rooms.cache import RoomCache

log = logging.getLogger(__name__)


class DroppedEvent(Exception):
    """An event that is not stored at all: it failed the format or signature checks, or
    what it builds on (prev events, auth events, the state before it) cannot be had."""


def server_allowed(acl: dict[str, Any], server_name: str) -> bool:
    """Whether ``m.room.server_acl`` content lets ``server_name`` participate."""
    host = (
        server_name.rsplit(":", 1)[0]
        if not server_name.startswith("[")
        else server_name.split("]")[0] + "]"
    )
    if not acl:
        return True
    if acl.get("allow_ip_literals", True) is False:
        try:
            ipaddress.ip_address(host.strip("[]"))
            return False
        except ValueError:
            pass
    deny = [d for d in acl.get("deny", []) if isinstance(d, str)]
    if any(fnmatch.fnmatchcase(host.lower(), d.lower()) for d in deny):
        return False
    allow = [a for a in acl.get("allow", []) if isinstance(a, str)]
    return any(fnmatch.fnmatchcase(host.lower(), a.lower()) for a in allow)


def event_id_or_none(pdu: Any, version: RoomVersion) -> str | None:
    """The event ID of a PDU, or None if it is too malformed to have one."""
    try:
        return engine_events.compute_event_id(pdu, version)
    except (FederationError, TypeError, ValueError, AttributeError):
        return None


class Verifier:
    def __init__(self, keyring: KeyRing) -> None:
        self.keyring = keyring

    async def verify(self, pdu: Any, room: RoomCache) -> engine_events.VerifiedPDU:
        """Steps 1-3: format, signatures (keys fetched as needed), content hash."""
        try:
            engine_events.check_pdu_format(pdu, room.version)
            if pdu.get("room_id") != room.room_id and not _is_create_of(pdu, room):
                raise DroppedEvent("event is for another room")
            await self.keyring.prefetch(_wanted_keys([pdu], room))
            verified = engine_events.verify_pdu(pdu, room.version, self.keyring.cached)
        except FederationError as e:
            raise DroppedEvent(str(e)) from e
        if verified.redacted:
            log.info("content hash of %s does not match: redacted on receipt", verified.event_id)
        return verified

    async def verify_many(self, pdus: Iterable[Any], room: RoomCache) -> dict[str, dict[str, Any]]:
        """Verify a batch (send_join and /state answers); events failing the checks are left out."""
        items = [p for p in pdus if isinstance(p, dict)]
        await self.keyring.prefetch(_wanted_keys(items, room))
        result: dict[str, dict[str, Any]] = {}
        for pdu in items:
            try:
                verified = await self.verify(pdu, room)
            except DroppedEvent as e:
                log.info("dropping event from a batch: %s", e)
                continue
            result[verified.event_id] = verified.pdu
        return result


def _wanted_keys(pdus: list[Any], room: RoomCache) -> list[tuple[str, str, int]]:
    wanted = []
    for pdu in pdus:
        try:
            for server in engine_events.required_signers(pdu, room.version):
                for key_id in pdu.get("signatures", {}).get(server, {}):
                    wanted.append((server, key_id, int(pdu.get("origin_server_ts", 0))))
        except (FederationError, KeyError, TypeError, ValueError, AttributeError):
            continue
    return wanted


def _is_create_of(pdu: dict[str, Any], room: RoomCache) -> bool:
    """A room-12 create event has no room_id: its hash is the room ID."""
    if (
        not room.version.room_id_is_create_hash
        or pdu.get("type") != "m.room.create"
        or "room_id" in pdu
    ):
        return False
    try:
        return engine_events.compute_room_id(pdu) == room.room_id
    except FederationError:
        return False
