"""Builds the push parts of a node: push actions, the pusher pool and the pushers API."""

from __future__ import annotations

from homeserver.common.clock import Clock
from homeserver.config import Config
from homeserver.push.actions import PushActions
from homeserver.push.gateway import GatewayClient
from homeserver.push.ports import IgnoreLists, RoomReads
from homeserver.push.pushers import PushersService
from homeserver.push.sender import PusherPool
from homeserver.storage.database import Database


def build_push(
    config: Config, db: Database, clock: Clock, rooms: RoomReads, ignored: IgnoreLists
) -> tuple[PushActions, PushersService]:
    """Push actions feed the pusher pool; the pool starts with :meth:`PusherPool.start`."""
    gateway = GatewayClient(allow_private_addresses=config.push.allow_private_addresses)
    pool = PusherPool(db, rooms, clock, gateway, include_content=config.push.include_content)
    actions = PushActions(db, rooms, config.server_name, ignored=ignored, on_notified=pool.wake)
    return actions, PushersService(db, pool, clock)
