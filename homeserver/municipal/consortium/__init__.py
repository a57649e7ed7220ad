"""Consortia: the signed document of who the members are, and closed federation.

A node in a consortium holds its document (signed by K of its admins, with each member's
pinned keys), serves it to the other members, learns newer versions from them, and with
``federation.closed: true`` federates only with itself and the members.  Other features
use :class:`~homeserver.municipal.consortium.service.ConsortiumService` through
``provided("consortium.service")``.  spec/consortium.md; README for the commands.

Settings (``features: {consortium: {...}}``): ``closed`` (as ``federation.closed``),
``poll_seconds`` (2: how often the node reads documents ``kairan consortium apply``
stored), ``refresh_seconds`` (60: how often it asks members for newer versions),
``contact_seconds`` (30: at most one such question per member contacting it), ``push``
(true: send each new version to the members at once), ``acl_delay_seconds`` (5: how
long a node waits before setting a bound room's server ACL when another server's user has
more power in the room, spec/consortium.md).
"""

from __future__ import annotations

from pathlib import Path

from homeserver.extensions import FeatureContext, Registry
from homeserver.municipal.consortium.binding import RoomBinding
from homeserver.municipal.consortium.commands import cli
from homeserver.municipal.consortium.gossip import Gossip
from homeserver.municipal.consortium.policy import (
    ConsortiumEventPolicy,
    ConsortiumPeers,
    ConsortiumPins,
)
from homeserver.municipal.consortium.routes import register_routes
from homeserver.municipal.consortium.service import ConsortiumService

SETTINGS = {
    "closed", "poll_seconds", "refresh_seconds", "contact_seconds", "push", "acl_delay_seconds",
}  # fmt: skip
#: The name other features find the service under.
SERVICE = "consortium.service"

__all__ = ["SERVICE", "cli", "register"]


def register(registry: Registry, context: FeatureContext) -> None:
    unknown = sorted(set(context.settings) - SETTINGS)
    if unknown:
        raise ValueError(f"unknown settings: {', '.join(unknown)}")
    closed = context.settings.get("closed", False)
    if not isinstance(closed, bool):
        raise ValueError("closed must be true or false")
    service = ConsortiumService(
        context.db, context.clock, context.server_name,
        closed=closed or context.federation_closed,
    )  # fmt: skip
    gossip = Gossip(service, context.settings)
    binding = RoomBinding(service, context.settings)
    registry.add_migrations(Path(__file__).parent / "migrations")
    registry.add_peer_policy(ConsortiumPeers(service))
    registry.add_key_pins(ConsortiumPins(service))
    registry.add_event_policy(ConsortiumEventPolicy(service, binding))
    registry.add_event_listener(binding)
    registry.add_middleware(gossip.middleware())
    register_routes(registry, service)
    registry.provide(SERVICE, service)
    registry.on_start(gossip.start)  # loads the documents...
    registry.on_start(binding.start)  # ...before the bound rooms are looked at
    registry.on_stop(binding.stop)
    registry.on_stop(gossip.stop)
