"""The node's extension points: what a feature may plug in, as narrow typed interfaces.

Each core package declares the port it calls (the rooms code its event policy, accounts
their login check, media its upload filter, the federation transport its peer policy);
this module gathers them as the one surface features program against.  The core never
imports a feature, nor this package: the composition root (homeserver/node/) hands each
service the part it uses.

| point | asked | may |
| --- | --- | --- |
| :class:`EventPolicy` | before any event is accepted, local or received; createRoom, invites, joins | refuse: a local action gets the error, a received event is soft-failed |
| :class:`PeerPolicy` | every inbound federation request's origin (after X-Matrix), every outbound destination | refuse (403; nothing sent, queued items dropped) |
| :class:`PinnedKeys` | every signing key lookup (requests, events) | pin a server's keys: only those verify it, none fetched |
| :class:`EventListener` | after an event is persisted, local or received | observe |
| :class:`SyncExtension` | for every ``/sync`` response | add its own sections |
| :class:`UploadFilter` | for every upload, before it is stored | accept, transform, quarantine |
| :class:`LoginCheck` | at each login, and for each use of an access token | refuse, hold pending |
| :class:`UserDirectoryFilter` | for every ``/user_directory/search`` | hide users |
| :class:`ProfileFields` | for every profile read; every profile change | add fields; refuse changing them |
| :class:`UserDirectorySource` | for every ``/user_directory/search``, after the node's own users | add users |

Routes (client, federation, admin), middleware per listener zone, a feature's own tables
and migrations, and start/stop callbacks are registered on the
:class:`~homeserver.extensions.registry.Registry`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from federation.ports import PeerPolicy, PinnedKeys
from homeserver.accounts.checks import ClientInfo, LoginAttempt, LoginCheck
from homeserver.accounts.requester import Requester
from homeserver.common.errors import MatrixError
from homeserver.media.filters import Upload, UploadDecision, UploadFilter
from homeserver.rooms.policy import EventPolicy, ProposedEvent
from homeserver.rooms.ports import ProfileFields, UserDirectoryFilter, UserDirectorySource


class EventListener(Protocol):
    """Told of each event once it is persisted (its transaction committed), local or
    received.  Must not block: start a task for slow work.  Exceptions are logged."""

    def on_event(self, room_id: str, event_id: str, pdu: Mapping[str, Any]) -> None: ...


class SyncExtension(Protocol):
    """Adds to a ``/sync`` response: ``since`` is None on an initial sync, ``upto`` the
    response's stream position, ``joined`` the user's joined room IDs."""

    async def __call__(
        self,
        requester: Requester,
        since: int | None,
        upto: int,
        response: dict[str, Any],
        joined: Sequence[str],
    ) -> None: ...


__all__ = [
    "ClientInfo",
    "EventListener",
    "EventPolicy",
    "LoginAttempt",
    "LoginCheck",
    "MatrixError",
    "PeerPolicy",
    "PinnedKeys",
    "ProfileFields",
    "ProposedEvent",
    "Requester",
    "SyncExtension",
    "Upload",
    "UploadDecision",
    "UploadFilter",
    "UserDirectoryFilter",
    "UserDirectorySource",
]
