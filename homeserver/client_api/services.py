"""The services the route modules reach (``request.app[SERVICES]``).

Built once by the composition root (homeserver/node/wiring.py), which hands it to the app
as the :class:`~homeserver.node.services.NodeServices` that extends it with what only the
node itself uses (the database, the federation parts, what it starts and stops).  Only route
modules read it (and the ``kairan`` command and the tests); it is never handed to a
service: each service gets what it uses at construction.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from homeserver.accounts.openid import OpenIdTokens
from homeserver.accounts.service import AccountService
from homeserver.accounts.throttle import Buckets
from homeserver.accounts.uia import UIA
from homeserver.admin.ops import AdminOps
from homeserver.admin.tokens import RegistrationTokens
from homeserver.common.http import RateLimiter
from homeserver.config import Config
from homeserver.e2ee.service import KeysService
from homeserver.media import MediaService
from homeserver.media.preview import UrlPreviewer
from homeserver.push.notifications import NotificationsService
from homeserver.push.pushers import PushersService
from homeserver.push.rules import PushRulesService
from homeserver.rooms.directory import DirectoryService
from homeserver.rooms.handler import RoomHandler
from homeserver.rooms.hierarchy import HierarchyService
from homeserver.rooms.history import HistoryService
from homeserver.rooms.knock import Knocks
from homeserver.rooms.relations import RelationsService
from homeserver.rooms.reports import ReportService
from homeserver.rooms.room_summary import RoomSummaryService
from homeserver.rooms.search import SearchService
from homeserver.rooms.service import RoomService
from homeserver.rooms.state_reads import RoomStateReads
from homeserver.rooms.timestamps import TimestampLookup
from homeserver.rooms.upgrade import RoomUpgrades
from homeserver.sync.presence import PresenceService
from homeserver.sync.service import SyncService
from homeserver.sync.sliding.service import SlidingSyncService
from homeserver.sync.typing import TypingService
from homeserver.userdata.service import UserDataService


@dataclass(frozen=True)
class Services:
    config: Config
    accounts: AccountService
    uia: UIA
    rate_limiter: RateLimiter
    #: ``rc_media_download``: media downloads and thumbnails, per user or address.
    media_limiter: Buckets
    rooms: RoomService
    handler: RoomHandler
    history: HistoryService
    search: SearchService
    room_state: RoomStateReads
    #: /relations and /threads.
    relations: RelationsService
    typing: TypingService
    presence: PresenceService
    openid: OpenIdTokens
    userdata: UserDataService
    sync: SyncService
    #: Simplified Sliding Sync (MSC4186).
    sliding_sync: SlidingSyncService
    directory: DirectoryService
    #: The space hierarchy (it asks other servers about their rooms).
    hierarchy: HierarchyService
    keys: KeysService
    push_rules: PushRulesService
    pushers: PushersService
    notifications: NotificationsService
    media: MediaService
    url_preview: UrlPreviewer
    admin: AdminOps
    tokens: RegistrationTokens
    #: Room upgrades (``/upgrade``).
    upgrades: RoomUpgrades
    #: Knocking (``/knock``), here or through other servers.
    knocks: Knocks
    #: ``/v1/room_summary`` (here or through other servers).
    room_summaries: RoomSummaryService
    #: ``/v1/rooms/{roomId}/timestamp_to_event``.
    timestamps: TimestampLookup
    #: Reports of events, rooms and users (``/report``), and the admins' list of them.
    reports: ReportService


SERVICES = web.AppKey("services", Services)
