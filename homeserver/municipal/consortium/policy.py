"""Closed federation as the node's extension points see it: the peer policy (who may
talk to us, whom we talk to), the pinned keys, and the event policy (invites, joins and
new rooms that would bring in a non-member)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from federation.identifiers import InvalidIdentifier, domain_of
from homeserver.common.errors import forbidden
from homeserver.extensions import EventPolicy, ProposedEvent
from homeserver.municipal.consortium.service import ConsortiumService

RULE = "federation.closed: only members of this node's consortia"


class ConsortiumPeers:
    """Peer policy: with ``federation.closed``, this node and the members only."""

    def __init__(self, service: ConsortiumService) -> None:
        self.service = service

    def inbound(self, origin: str) -> str | None:
        return self.service.refusal(origin)

    def outbound(self, destination: str) -> str | None:
        return self.service.refusal(destination)


class ConsortiumPins:
    """A member's signing keys are those the document pins, and only those."""

    def __init__(self, service: ConsortiumService) -> None:
        self.service = service

    def pinned(self, server: str) -> Mapping[str, str] | None:
        return self.service.pinned(server)


class ConsortiumEventPolicy(EventPolicy):
    """With ``federation.closed``: no invite of a non-member's user, no join through
    non-member servers only, no room created inviting one, and no local membership
    event naming one."""

    def __init__(self, service: ConsortiumService) -> None:
        self.service = service

    def _check_user(self, user_id: str, what: str) -> None:
        try:
            server = domain_of(user_id)
        except InvalidIdentifier:
            return  # malformed IDs are the core's to refuse
        if self.service.refusal(server) is not None:
            raise forbidden(f"{what} {user_id}: {server} is not a member ({RULE})")

    async def user_may_invite(self, inviter: str, invitee: str, room_id: str) -> None:
        self._check_user(invitee, "cannot invite")

    async def user_may_create_room(self, user_id: str, request: Mapping[str, Any]) -> None:
        invites = request.get("invite")
        if isinstance(invites, list):
            for invitee in invites:
                if isinstance(invitee, str):
                    self._check_user(invitee, "cannot create a room inviting")

    async def user_may_join_via(self, user_id: str, room_id: str, servers: Sequence[str]) -> None:
        if servers and all(self.service.refusal(s) is not None for s in servers):
            raise forbidden(f"cannot join {room_id} through {', '.join(servers)} ({RULE})")

    async def check_event(self, event: ProposedEvent) -> None:
        if (
            event.local
            and event.type == "m.room.member"
            and event.state_key
            and event.content.get("membership") in ("invite", "join", "knock")
        ):
            self._check_user(event.state_key, "cannot make a member of")
