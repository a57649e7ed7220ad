"""The composition root: builds every service of a node, each given what it uses.

This is the one place that knows how the services fit together.  Each is built once, in
dependency order, with its collaborators (or their callbacks) passed to its constructor;
nothing is assigned into a service afterwards.  Where two services need each other, the
one told is built first: push actions and the federation outbox read rooms through the
:class:`RoomReader` and are handed to :class:`RoomService` as its hook, listeners and
outbox; the federation side of E2EE and of media is split in two, the part the local
service calls (built before it) and the part that calls the local service (after it).

What the node's features plug in (homeserver/extensions: policies, filters, checks,
listeners, sync extensions) is loaded first and handed to the constructors here, next to
the collaborators they already get; a service with nothing plugged in gets None.
"""

from __future__ import annotations

from dataclasses import dataclass

from federation.client import FederationClient
from federation.errors import KeyFormatError
from federation.keyring import KeyRing
from federation.ports import StoredKey
from federation.sender import TransactionSender
from federation.server import FederationServer
from federation.signing import SigningKey, load_signing_keys
from homeserver.accounts.openid import OpenIdTokens
from homeserver.accounts.passwords import Passwords
from homeserver.accounts.service import AccountService
from homeserver.accounts.throttle import Buckets, LoginThrottle
from homeserver.accounts.uia import UIA
from homeserver.admin.metrics import NodeMetrics
from homeserver.admin.ops import AdminOps
from homeserver.admin.tokens import RegistrationTokens
from homeserver.common.clock import Clock
from homeserver.common.http import RateLimiter
from homeserver.common.notifier import Notifier
from homeserver.config import Config, ConfigError
from homeserver.e2ee.service import KeysService
from homeserver.extensions import Extensions
from homeserver.federation.access import RoomAccess
from homeserver.federation.e2ee import FederatedKeys
from homeserver.federation.e2ee_inbound import KeysReceiver
from homeserver.federation.edus import EduReceiver
from homeserver.federation.handler import NodeFederationHandler
from homeserver.federation.joining import JoinsUnderway
from homeserver.federation.joins import RemoteRooms
from homeserver.federation.knocks import RemoteKnocks
from homeserver.federation.media import FederatedMedia
from homeserver.federation.media_serving import LocalMediaServer
from homeserver.federation.memberships import MembershipHandler
from homeserver.federation.outbound import Outbound
from homeserver.federation.parts import Federation, Transport
from homeserver.federation.pipeline import EventPipeline
from homeserver.federation.public_rooms import RemotePublicRooms
from homeserver.federation.serving import HistoryServer
from homeserver.federation.spaces import RemoteSpaces
from homeserver.federation.timestamps import RemoteTimestamps
from homeserver.media import MediaService
from homeserver.media.files import Receiver
from homeserver.media.preview import UrlPreviewer
from homeserver.node.features import event_listeners, load_extensions
from homeserver.node.services import NodeServices
from homeserver.push.actions import PushActions
from homeserver.push.gateway import GatewayClient
from homeserver.push.notifications import NotificationsService
from homeserver.push.pushers import PushersService
from homeserver.push.rules import PushRulesService
from homeserver.push.sender import PusherPool
from homeserver.rooms.directory import DirectoryService
from homeserver.rooms.handler import RoomHandler
from homeserver.rooms.hierarchy import HierarchyService
from homeserver.rooms.history import HistoryService
from homeserver.rooms.housekeeping import Housekeeping
from homeserver.rooms.ignored import IgnoredUsers
from homeserver.rooms.knock import Knocks
from homeserver.rooms.outliers import OutlierMemberships
from homeserver.rooms.policy import EventPolicy
from homeserver.rooms.reader import RoomReader
from homeserver.rooms.relations import RelationsService
from homeserver.rooms.reports import ReportService
from homeserver.rooms.resolver import StateResolver
from homeserver.rooms.room_summary import RoomSummaryService
from homeserver.rooms.search import SearchService
from homeserver.rooms.search_index import SearchIndex
from homeserver.rooms.service import RoomService
from homeserver.rooms.state_reads import RoomStateReads
from homeserver.rooms.summary import RoomSummaries
from homeserver.rooms.timestamps import TimestampLookup
from homeserver.rooms.upgrade import RoomUpgrades
from homeserver.rooms.visibility import Visibility
from homeserver.storage.database import Database, open_database
from homeserver.storage.federation import SqlKeyStore, SqlQueueStore
from homeserver.storage.state import StateStore
from homeserver.sync.presence import PresenceService
from homeserver.sync.service import SyncService
from homeserver.sync.sliding.connections import ConnectionStore
from homeserver.sync.sliding.extensions import Extensions as SlidingExtensions
from homeserver.sync.sliding.service import SlidingSyncService
from homeserver.sync.typing import TypingService
from homeserver.userdata.service import UserDataService


def load_key(config: Config) -> SigningKey:
    try:
        text = config.signing_key_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"signing key {config.signing_key_path} is missing (run 'kairan init' or restore it)"
        ) from None
    except OSError as e:
        raise ConfigError(f"cannot read signing key {config.signing_key_path}: {e.strerror}") from e
    try:
        return load_signing_keys(text)[0]
    except KeyFormatError as e:
        raise ConfigError(f"signing key {config.signing_key_path}: {e}") from e


async def build_services(
    config: Config,
    *,
    clock: Clock | None = None,
    database: Database | None = None,
    fast_passwords: bool = False,
) -> NodeServices:
    """Open the database (unless given) and build the node's services on it."""
    key = load_key(config)
    db = database or await open_database(config.database)
    clock = clock or Clock()
    extensions = await load_extensions(config, db, clock)
    state_store = StateStore()
    async with db.read() as conn:
        await state_store.load(conn)
    notifier = Notifier()
    metrics = NodeMetrics(notifier) if config.metrics.enabled else None
    base = _Base(config, key, clock, db, state_store, notifier, metrics, extensions)
    return _build(base, fast_passwords)


@dataclass(frozen=True)
class _Base:
    """What every service may be built with."""

    config: Config
    key: SigningKey
    clock: Clock
    db: Database
    state_store: StateStore
    notifier: Notifier
    metrics: NodeMetrics | None
    #: What the node's features plug in (homeserver/extensions).
    extensions: Extensions

    @property
    def server_name(self) -> str:
        return self.config.server_name

    @property
    def policy(self) -> EventPolicy | None:
        """The features' event policy, or None when no feature has one."""
        return self.extensions.event_policy or None


@dataclass(frozen=True)
class _Rooms:
    """Rooms and what is built with them: those RoomService tells about new events."""

    reader: RoomReader
    rooms: RoomService
    outliers: OutlierMemberships
    ignored: IgnoredUsers
    outbound: Outbound
    push_actions: PushActions
    pushers: PushersService
    keys: KeysService
    keys_receiver: KeysReceiver
    presence: PresenceService


def _build(base: _Base, fast_passwords: bool) -> NodeServices:
    config, clock, db = base.config, base.clock, base.db
    accounts = AccountService(
        db, base.server_name, clock, Passwords(fast=fast_passwords), config.admins,
        config.password_policy, base.extensions.login_checks or None,
        LoginThrottle(config.login_limits, clock), sessions=config.sessions,
    )  # fmt: skip
    transport = _build_transport(config, base.key, clock, db, base.extensions)
    openid = OpenIdTokens(db, clock, base.server_name)
    core = _build_rooms(base, accounts, transport)
    typing, push_rules, userdata = _build_user_state(base, core)
    presence = core.presence
    directory = DirectoryService(
        core.rooms, accounts,
        base.extensions.managed_profile_fields,
        base.extensions.user_directory_sources,
        hidden=base.extensions.directory_filters or None,
        feature_fields=base.extensions.profile_fields or None,
        remote=RemotePublicRooms(transport.client),
    )  # fmt: skip
    media, remote_media = _build_media(base, transport)
    media_limiter = Buckets(config.media_download_limit, clock)
    federation = _build_federation(
        base, transport, core, accounts, typing, userdata, directory, media, remote_media,
        media_limiter, presence, openid,
    )  # fmt: skip
    visibility = Visibility(core.reader, core.ignored, base.policy)
    history = HistoryService(core.reader, clock, visibility, backfiller=federation.remote.backfill)
    sync = SyncService(
        core.reader, history, typing, base.notifier, clock,
        extensions=[
            core.keys.sync_extension, push_rules.sync_extension, presence.sync_extension,
            *base.extensions.sync_extensions,
        ],
    )  # fmt: skip
    sliding_sync = SlidingSyncService(
        history, typing, base.notifier, ConnectionStore(db, clock),
        SlidingExtensions(db, core.keys, typing, push_rules.sync_extension),
    )  # fmt: skip
    handler = RoomHandler(core.rooms, accounts, core.outliers, federation.remote, base.policy)
    room_state = RoomStateReads(core.reader, visibility)
    return NodeServices(
        config=config,
        db=db,
        clock=clock,
        signing_key=base.key,
        notifier=base.notifier,
        state_store=base.state_store,
        accounts=accounts,
        uia=UIA(),
        rooms=core.rooms,
        handler=handler,
        history=history,
        room_state=room_state,
        relations=RelationsService(core.reader, history),
        search=SearchService(core.reader, visibility, history),
        typing=typing,
        presence=presence,
        openid=openid,
        userdata=userdata,
        sync=sync,
        sliding_sync=sliding_sync,
        directory=directory,
        federation=federation,
        hierarchy=federation.hierarchy,
        rate_limiter=RateLimiter(config.rate_limit.per_second, config.rate_limit.burst),
        media_limiter=media_limiter,
        media=media,
        keys=core.keys,
        push_rules=push_rules,
        push_actions=core.push_actions,
        notifications=NotificationsService(history),
        url_preview=UrlPreviewer(config.url_preview, media, clock),
        pushers=core.pushers,
        housekeeping=Housekeeping(db, clock),
        admin=AdminOps(db, base.server_name, accounts, core.reader, handler, directory, media),
        tokens=RegistrationTokens(db, clock),
        upgrades=RoomUpgrades(handler, push_rules),
        timestamps=TimestampLookup(
            core.reader,
            visibility,
            remote=RemoteTimestamps(core.rooms, federation.pipeline, transport.client),
        ),
        reports=ReportService(core.reader, room_state, accounts, clock),
        room_summaries=RoomSummaryService(handler, federation.hierarchy),
        knocks=Knocks(handler, RemoteKnocks(core.rooms, transport.client, core.outliers)),
        metrics=base.metrics,
        extensions=base.extensions,
    )


def _build_rooms(base: _Base, accounts: AccountService, transport: Transport) -> _Rooms:
    """RoomService, and first what it tells about new events (and what they need)."""
    db, clock, notifier, server_name = base.db, base.clock, base.notifier, base.server_name
    reader = RoomReader(db, base.state_store)
    ignored = IgnoredUsers(db)
    outbound = Outbound(reader, transport.sender, server_name)
    remote_keys = FederatedKeys(db, transport.client, transport.sender, server_name, accounts)
    keys = KeysService(db, accounts, notifier, clock, server_name, remote=remote_keys)
    keys_receiver = KeysReceiver(keys, db, transport.client, clock, notifier, accounts)
    push = base.config.push
    gateway = GatewayClient(allow_private_addresses=push.allow_private_addresses)
    pool = PusherPool(db, reader, clock, gateway, include_content=push.include_content)
    push_actions = PushActions(db, reader, server_name, ignored=ignored, on_notified=pool.wake)
    presence = PresenceService(
        reader, notifier, clock, server_name, base.config.presence,
        on_local_change=outbound.on_presence, send_to=outbound.presence_to,
    )  # fmt: skip
    rooms = RoomService(
        reader,
        notifier,
        clock,
        server_name,
        base.key,
        hooks=[push_actions, SearchIndex(db)],
        listeners=[
            push_actions.after_commit,
            outbound.on_event,
            keys_receiver.on_room_event,
            presence.on_event,
            *([base.metrics.on_event] if base.metrics is not None else []),
            *event_listeners(base.extensions),
        ],
        outbox=outbound.stage,
        policy=base.policy,
    )
    return _Rooms(
        reader=reader,
        rooms=rooms,
        outliers=OutlierMemberships(db, reader, notifier),
        ignored=ignored,
        outbound=outbound,
        push_actions=push_actions,
        pushers=PushersService(db, pool, clock),
        keys=keys,
        keys_receiver=keys_receiver,
        presence=presence,
    )


def _build_user_state(
    base: _Base, core: _Rooms
) -> tuple[TypingService, PushRulesService, UserDataService]:
    """Typing, push rules and per-user data: they tell push and other servers."""
    db, notifier, reader = base.db, base.notifier, core.reader

    def typing_changed(room_id: str) -> None:
        cached = reader.cached(room_id)
        if cached is not None:
            notifier.notify(cached.interested())

    typing = TypingService(on_change=typing_changed, on_local_typing=core.outbound.on_typing)
    push_rules = PushRulesService(db, notifier, on_change=[core.push_actions.rules_changed])
    userdata = UserDataService(
        db,
        reader,
        notifier,
        base.clock,
        ignored=core.ignored,
        on_read=core.push_actions.mark_read,
        on_receipt=core.outbound.on_receipt,
    )
    return typing, push_rules, userdata


def _build_media(base: _Base, transport: Transport) -> tuple[MediaService, FederatedMedia]:
    """The content repository, and first the fetcher of other servers' media it uses."""
    config = base.config
    receiver = Receiver(config.media_path / "tmp", config.max_upload_bytes)
    remote_media = FederatedMedia(
        transport.client,
        base.db,
        base.clock,
        config.media_path,
        receiver,
        authenticated_media=config.enable_authenticated_media,
        settings=config.remote_media_cache,
    )
    media = MediaService(
        base.db, config, base.clock, receiver, remote=remote_media,
        upload_filter=base.extensions.upload_filters or None,
    )  # fmt: skip
    return media, remote_media


def _build_transport(
    config: Config, key: SigningKey, clock: Clock, db: Database, extensions: Extensions
) -> Transport:
    settings = config.federation
    client = FederationClient(
        config.server_name,
        key,
        verify_tls=settings.verify_tls,
        ca_file=str(settings.ca_file) if settings.ca_file else None,
        allow_private_addresses=settings.allow_private_addresses,
        overrides=dict(settings.server_overrides),
        peer_policy=extensions.peer_policy or None,
    )
    local = StoredKey(config.server_name, key.key_id, key.public_key_base64, 2**62)
    keyring = KeyRing(
        client,
        SqlKeyStore(db),
        clock,
        [(name, dict(keys)) for name, keys in settings.trusted_key_servers],
        local=local,
        pins=extensions.key_pins or None,
    )
    return Transport(client, keyring, TransactionSender(client, SqlQueueStore(db)))


def _build_federation(
    base: _Base,
    transport: Transport,
    core: _Rooms,
    accounts: AccountService,
    typing: TypingService,
    userdata: UserDataService,
    directory: DirectoryService,
    media: MediaService,
    remote_media: FederatedMedia,
    media_limiter: Buckets,
    presence: PresenceService,
    openid: OpenIdTokens,
) -> Federation:
    server_name, clock, rooms = base.server_name, base.clock, core.rooms
    client, sender = transport.client, transport.sender
    resolver = StateResolver(rooms)
    pipeline = EventPipeline(rooms, resolver, transport.keyring, client, server_name, base.policy)
    joins = JoinsUnderway()
    remote = RemoteRooms(rooms, pipeline, client, sender, core.outliers, joins)
    summaries = RoomSummaries(rooms)
    access = RoomAccess(core.reader)
    handler = NodeFederationHandler(
        core.reader,
        server_name,
        clock,
        access=access,
        pipeline=pipeline,
        sender=sender,
        memberships=MembershipHandler(
            rooms, pipeline, sender, access, accounts, core.outliers, base.policy
        ),
        edus=EduReceiver(
            core.reader,
            typing,
            userdata,
            access.acl_denies,
            {**core.keys_receiver.edu_handlers(), "m.presence": presence.on_edu},
        ),
        history=HistoryServer(rooms, resolver),
        directory=directory,
        summaries=summaries,
        keys=core.keys_receiver,
        media=LocalMediaServer(media, media_limiter),
        openid=openid,
        joins=joins,
    )
    server = FederationServer(
        server_name, base.key, transport.keyring, handler, clock.now_ms,
        base.config.federation.enabled, peer_policy=base.extensions.peer_policy or None,
    )  # fmt: skip
    hierarchy = HierarchyService(summaries, RemoteSpaces(client, clock, server_name), clock)
    return Federation(
        client, transport.keyring, sender, pipeline, remote, core.outbound, handler, server,
        hierarchy, remote_media,
    )  # fmt: skip
