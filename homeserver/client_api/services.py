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

from homeserver.accounts.service import AccountService
from homeserver.accounts.throttle import Buckets
from homeserver.accounts.uia import UIA
from homeserver.admin.ops import AdminOps
from homeserver.admin.tokens import RegistrationTokens
from homeserver.common.http import RateLimiter
from homeserver.config import Config
from homeserver.e2ee.service import KeysService
from homeserver.media import MediaService
from homeserver.push.pushers import PushersService
from homeserver.push.rules import PushRulesService
from homeserver.rooms.directory import DirectoryService
from homeserver.rooms.handler import RoomHandler
from homeserver.rooms.hierarchy import HierarchyService
from homeserver.rooms.history import HistoryService
from homeserver.rooms.search import SearchService
from homeserver.rooms.service import RoomService
from homeserver.rooms.state_reads import RoomStateReads
from homeserver.sync.service import SyncService
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
    typing: TypingService
    userdata: UserDataService
    sync: SyncService
    directory: DirectoryService
    #: The space hierarchy (it asks other servers about their rooms).
    hierarchy: HierarchyService
    keys: KeysService
    push_rules: PushRulesService
    pushers: PushersService
    media: MediaService
    admin: AdminOps
    tokens: RegistrationTokens


SERVICES = web.AppKey("services", Services)
