"""Closed federation as the node's extension points see it: the peer policy (who may
talk to us, whom we talk to), the pinned keys, and the event policy (invites, joins and
new rooms that would bring in a non-member, and what rooms bound to a consortium allow)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from federation.identifiers import InvalidIdentifier, domain_of
from homeserver.common.errors import MatrixError, forbidden
from homeserver.extensions import EventPolicy, ProposedEvent
from homeserver.federation.verify import server_allowed
from homeserver.municipal.consortium import acl
from homeserver.municipal.consortium.binding import RoomBinding
from homeserver.municipal.consortium.service import ConsortiumService

RULE = "federation.closed: only members of this node's consortia"
BOUND = "the room is bound to consortium"
#: Memberships that make a user (and so their server) take part in a room.
_ENTERING = ("invite", "join", "knock")


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
    non-member servers only, no room created inviting one, and no membership event naming
    one (a local user's: 403; a received one: soft-failed).  In a room bound to a
    consortium the node holds, whether closed or not: no membership event naming a user
    of a server outside that consortium, and no server ACL that denies this node; a
    local binding must be well formed (400 ``M_BAD_JSON``)."""

    def __init__(self, service: ConsortiumService, binding: RoomBinding) -> None:
        self.service = service
        self.binding = binding

    def _check_user(self, user_id: str, what: str) -> None:
        server = _server_of(user_id)
        if server is not None and self.service.refusal(server) is not None:
            raise forbidden(f"{what} {user_id}: {server} is not a member ({RULE})")

    async def user_may_invite(self, inviter: str, invitee: str, room_id: str) -> None:
        self._check_user(invitee, "cannot invite")
        await self._check_bound_user(room_id, invitee, "cannot invite")

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
        if event.type == "m.room.member":
            if event.state_key and event.content.get("membership") in _ENTERING:
                self._check_user(event.state_key, "cannot make a member of")
                await self._check_bound_user(
                    event.room_id, event.state_key, "cannot make a member of"
                )
        elif event.type == acl.BINDING and event.local:
            problem = (
                "the state key of a binding is empty" if event.state_key != ""
                else acl.binding_problem(event.content)
            )  # fmt: skip
            if problem is not None:
                raise MatrixError(400, "M_BAD_JSON", problem)
        elif event.type == acl.ACL and event.state_key == "":
            own = self.service.server_name
            if not server_allowed(dict(event.content), own):
                doc = await self.binding.bound_document(event.room_id)
                if doc is not None and own in doc.members:
                    raise forbidden(
                        f"a server ACL denying {own}, a member of consortium {doc.id}: "
                        f"{BOUND} {doc.id}"
                    )

    async def _check_bound_user(self, room_id: str, user_id: str, what: str) -> None:
        server = _server_of(user_id)
        if server is None or server == self.service.server_name:
            return
        doc = await self.binding.bound_document(room_id)
        if doc is not None and server not in doc.members:
            raise forbidden(
                f"{what} {user_id}: {server} is not a member of consortium {doc.id} "
                f"({BOUND} {doc.id})"
            )


def _server_of(user_id: str) -> str | None:
    try:
        return domain_of(user_id)
    except InvalidIdentifier:
        return None  # malformed IDs are the core's to refuse
