"""What the composition root builds: the route modules' services, and what only the node
uses (the database, the federation parts, what it starts and stops)."""

from __future__ import annotations

from dataclasses import dataclass

from federation.signing import SigningKey
from homeserver.admin.metrics import NodeMetrics
from homeserver.client_api.services import Services
from homeserver.common.clock import Clock
from homeserver.common.notifier import Notifier
from homeserver.extensions import NO_EXTENSIONS, Extensions
from homeserver.federation.parts import Federation
from homeserver.push.actions import PushActions
from homeserver.rooms.housekeeping import Housekeeping
from homeserver.storage.database import Database
from homeserver.storage.state import StateStore


@dataclass(frozen=True)
class NodeServices(Services):
    db: Database
    clock: Clock
    signing_key: SigningKey
    notifier: Notifier
    state_store: StateStore
    push_actions: PushActions
    federation: Federation
    housekeeping: Housekeeping
    #: None unless ``metrics.enabled``.
    metrics: NodeMetrics | None
    #: What the node's features plugged in (homeserver/extensions).
    extensions: Extensions = NO_EXTENSIONS
