"""The node's federation parts, as the composition root builds them: what it starts and
stops, and what the route modules and the tests reach."""

from __future__ import annotations

from dataclasses import dataclass

from federation.client import FederationClient
from federation.keyring import KeyRing
from federation.sender import TransactionSender
from federation.server import FederationServer
from homeserver.federation.handler import NodeFederationHandler
from homeserver.federation.joins import RemoteRooms
from homeserver.federation.media import FederatedMedia
from homeserver.federation.outbound import Outbound
from homeserver.federation.pipeline import EventPipeline
from homeserver.rooms.hierarchy import HierarchyService


@dataclass
class Transport:
    """Requests to other servers, their signing keys, and the persisted outbound queues."""

    client: FederationClient
    keyring: KeyRing
    sender: TransactionSender


@dataclass
class Federation:
    client: FederationClient
    keyring: KeyRing
    sender: TransactionSender
    pipeline: EventPipeline
    remote: RemoteRooms
    outbound: Outbound
    handler: NodeFederationHandler
    server: FederationServer
    #: The Client-Server space hierarchy (it asks other servers about their rooms).
    hierarchy: HierarchyService
    #: Other servers' media.
    media: FederatedMedia

    async def start(self) -> None:
        await self.sender.start()
        self.media.start()

    async def close(self) -> None:
        await self.media.close()
        await self.outbound.drain()
        await self.sender.close()
