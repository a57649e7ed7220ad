"""Building the node's federation parts from its configuration and services."""

from __future__ import annotations

from dataclasses import dataclass

from federation.client import FederationClient
from federation.keyring import KeyRing
from federation.ports import StoredKey
from federation.sender import TransactionSender
from federation.server import FederationServer
from federation.signing import SigningKey
from homeserver.accounts.service import AccountService
from homeserver.common.clock import Clock
from homeserver.config import Config, RemoteMediaCache
from homeserver.e2ee.service import KeysService
from homeserver.federation.e2ee import FederatedKeys
from homeserver.federation.handler import NodeFederationHandler
from homeserver.federation.joins import RemoteRooms
from homeserver.federation.media import FederatedMedia
from homeserver.federation.outbound import Outbound
from homeserver.federation.pipeline import EventPipeline
from homeserver.federation.spaces import RemoteSpaces
from homeserver.media import MediaService
from homeserver.rooms.directory import DirectoryService
from homeserver.rooms.hierarchy import HierarchyService
from homeserver.rooms.outliers import OutlierMemberships
from homeserver.rooms.resolver import StateResolver
from homeserver.rooms.service import RoomService
from homeserver.rooms.summary import RoomSummaries
from homeserver.storage.database import Database
from homeserver.storage.federation import SqlKeyStore, SqlQueueStore
from homeserver.sync.typing import TypingService
from homeserver.userdata.service import UserDataService


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
    #: Other servers' media (set by connect_e2ee_and_media).
    media: FederatedMedia | None = None

    async def start(self) -> None:
        await self.sender.start()
        if self.media is not None:
            self.media.start()

    async def close(self) -> None:
        if self.media is not None:
            await self.media.close()
        await self.outbound.drain()
        await self.sender.close()


@dataclass
class Transport:
    """Requests to other servers, their signing keys, and the persisted outbound queues."""

    client: FederationClient
    keyring: KeyRing
    sender: TransactionSender


def build_transport(config: Config, key: SigningKey, clock: Clock, db: Database) -> Transport:
    settings = config.federation
    client = FederationClient(
        config.server_name,
        key,
        verify_tls=settings.verify_tls,
        ca_file=str(settings.ca_file) if settings.ca_file else None,
        allow_private_addresses=settings.allow_private_addresses,
        overrides=dict(settings.server_overrides),
    )
    local = StoredKey(config.server_name, key.key_id, key.public_key_base64, 2**62)
    keyring = KeyRing(
        client,
        SqlKeyStore(db),
        clock,
        [(name, dict(keys)) for name, keys in settings.trusted_key_servers],
        local=local,
    )
    sender = TransactionSender(client, SqlQueueStore(db))
    return Transport(client, keyring, sender)


def build_federation(
    config: Config,
    key: SigningKey,
    clock: Clock,
    transport: Transport,
    outbound: Outbound,
    outliers: OutlierMemberships,
    rooms: RoomService,
    typing: TypingService,
    userdata: UserDataService,
    directory: DirectoryService,
    accounts: AccountService,
) -> Federation:
    settings = config.federation
    client, keyring, sender = transport.client, transport.keyring, transport.sender
    pipeline = EventPipeline(rooms, StateResolver(rooms), keyring, client, config.server_name)
    remote = RemoteRooms(rooms, pipeline, client, sender, outliers)
    handler = NodeFederationHandler(
        rooms, pipeline, sender, typing, userdata, directory, accounts, outliers
    )
    server = FederationServer(
        config.server_name, key, keyring, handler, clock.now_ms, settings.enabled
    )
    hierarchy = HierarchyService(
        RoomSummaries(rooms), RemoteSpaces(client, clock, config.server_name), clock
    )
    return Federation(
        client, keyring, sender, pipeline, remote, outbound, handler, server, hierarchy
    )


def connect_e2ee_and_media(
    federation: Federation,
    rooms: RoomService,
    keys: KeysService,
    media: MediaService,
    clock: Clock,
    cache: RemoteMediaCache | None = None,
) -> None:
    """Device lists, keys, to-device messages and media across servers."""
    e2ee = FederatedKeys(keys, federation.client, federation.sender, clock)
    keys.remote = e2ee
    federation.handler.keys_handler = e2ee
    federation.handler.edu_handlers.update(e2ee.edu_handlers())
    rooms.listeners.append(e2ee.on_room_event)
    remote_media = FederatedMedia(media, federation.client, keys.db, clock, cache)
    media.remote = remote_media
    federation.media = remote_media
    federation.handler.media_handler = remote_media.serve
    federation.handler.media_thumbnail_handler = remote_media.serve_thumbnail
