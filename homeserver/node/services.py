"""The services of a node, built once by the composition root and passed to handlers."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from federation.signing import SigningKey
from homeserver.accounts.service import AccountService
from homeserver.accounts.uia import UIA
from homeserver.admin.metrics import NodeMetrics
from homeserver.admin.ops import AdminOps
from homeserver.admin.tokens import RegistrationTokens
from homeserver.common.clock import Clock
from homeserver.common.http import RateLimiter
from homeserver.common.notifier import Notifier
from homeserver.config import Config
from homeserver.e2ee.service import KeysService
from homeserver.federation.parts import Federation
from homeserver.media import MediaService
from homeserver.node.housekeeping import Housekeeping
from homeserver.push.actions import PushActions
from homeserver.push.pushers import PushersService
from homeserver.push.rules import PushRulesService
from homeserver.rooms.directory import DirectoryService
from homeserver.rooms.handler import RoomHandler
from homeserver.rooms.history import HistoryService
from homeserver.rooms.service import RoomService
from homeserver.storage.database import Database
from homeserver.storage.state import StateStore
from homeserver.sync.service import SyncService
from homeserver.sync.typing import TypingService
from homeserver.userdata.service import UserDataService


@dataclass(frozen=True)
class Services:
    config: Config
    db: Database
    clock: Clock
    signing_key: SigningKey
    notifier: Notifier
    state_store: StateStore
    accounts: AccountService
    uia: UIA
    rooms: RoomService
    handler: RoomHandler
    history: HistoryService
    typing: TypingService
    userdata: UserDataService
    sync: SyncService
    directory: DirectoryService
    rate_limiter: RateLimiter
    keys: KeysService
    push_rules: PushRulesService
    push_actions: PushActions
    pushers: PushersService
    media: MediaService
    federation: Federation
    housekeeping: Housekeeping
    admin: AdminOps
    tokens: RegistrationTokens
    #: None unless ``metrics.enabled``.
    metrics: NodeMetrics | None


SERVICES = web.AppKey("services", Services)
