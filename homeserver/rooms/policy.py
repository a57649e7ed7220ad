"""The event policy port: what the rooms code asks before it accepts an event or a room
action.  Features implement it (see homeserver/extensions); the core only calls it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ProposedEvent:
    """An event about to be accepted.

    ``origin`` is ``None`` for an event of a local user (asked before it is built and
    signed, so ``pdu`` is ``None``), else the server that sent it to us (``pdu`` is the
    whole received event).
    """

    room_id: str
    sender: str
    type: str
    state_key: str | None
    content: Mapping[str, Any]
    origin: str | None = None
    pdu: Mapping[str, Any] | None = None

    @property
    def local(self) -> bool:
        return self.origin is None

    @classmethod
    def received(cls, room_id: str, pdu: Mapping[str, Any], origin: str) -> ProposedEvent:
        """A received event, its fields read defensively (the policy sees the whole PDU)."""
        state_key, content = pdu.get("state_key"), pdu.get("content")
        return cls(
            room_id,
            str(pdu.get("sender", "")),
            str(pdu.get("type", "")),
            state_key if isinstance(state_key, str) else None,
            content if isinstance(content, dict) else {},
            origin=origin,
            pdu=pdu,
        )


class EventPolicy:
    """Decides which events and room actions are allowed (what Synapse's spam checker
    callbacks decide).  Subclass and override what you need: each method returns ``None``
    to allow and raises a ``MatrixError`` to refuse; the defaults allow everything.

    A received event that a policy refuses is soft-failed: stored, so that the room's
    history stays whole for every server, but kept out of the current state and of what
    clients see, as Synapse does with events its spam checker refuses.
    """

    async def check_event(self, event: ProposedEvent) -> None:
        """Asked before any event is accepted, local or received over federation."""

    async def user_may_create_room(self, user_id: str, request: Mapping[str, Any]) -> None:
        """A local user's ``createRoom`` (``request`` is its body: ``invite``, ``preset``...)."""

    async def user_may_invite(self, inviter: str, invitee: str, room_id: str) -> None:
        """An invite by a local user, or one received from another server for a local user."""

    async def user_may_join_room(self, user_id: str, room_id: str, is_invited: bool) -> None:
        """A local user's join of a room (``room_id`` as the user named it: ID or alias)."""

    async def user_may_join_via(self, user_id: str, room_id: str, servers: Sequence[str]) -> None:
        """A local user's join of a room this node is not in yet, through ``servers``."""

    async def user_may_peek(self, user_id: str, room_id: str) -> None:
        """A local user who is not a member reading a world-readable room's events or
        state (``/messages``, ``/state``... of a room they are not in: peeking)."""
