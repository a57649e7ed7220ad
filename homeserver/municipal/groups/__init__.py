"""Consortium user groups: a space bound to a consortium, listed in the directory, with
themed rooms that its members join (join rule ``restricted`` to the space); staff of every
member node find it and join from their own node.  spec/consortium.md, "User groups".

A feature of its own on top of the consortium feature (it needs ``consortium.service``:
enable ``consortium`` before ``groups``), so that the consortium feature stays what decides
who the members are, and a node may hold consortia without making groups.

Settings (``features: {groups: {...}}``): ``poll_seconds`` (1: how often the node reads
the requests ``kairan group`` stored).
"""

from __future__ import annotations

from pathlib import Path

from homeserver.extensions import FeatureContext, Registry
from homeserver.municipal.groups.commands import cli
from homeserver.municipal.groups.requests import RequestRunner
from homeserver.municipal.groups.routes import register_routes
from homeserver.municipal.groups.service import GroupService

SETTINGS = {"poll_seconds"}
CONSORTIUM_SERVICE = "consortium.service"

__all__ = ["cli", "register"]


def register(registry: Registry, context: FeatureContext) -> None:
    unknown = sorted(set(context.settings) - SETTINGS)
    if unknown:
        raise ValueError(f"unknown settings: {', '.join(unknown)}")
    poll = context.settings.get("poll_seconds", 1)
    if isinstance(poll, bool) or not isinstance(poll, int | float) or not 0 < poll <= 3600:
        raise ValueError("poll_seconds must be a number of seconds (0-3600]")
    consortia = registry.provided(CONSORTIUM_SERVICE)
    if consortia is None:
        raise ValueError("needs the consortium feature, enabled before groups")
    service = GroupService(context.db, context.clock, consortia, context.server_name)
    runner = RequestRunner(service, float(poll))
    registry.add_migrations(Path(__file__).parent / "migrations")
    register_routes(registry, service)
    registry.on_start(runner.start)
    registry.on_stop(runner.stop)
