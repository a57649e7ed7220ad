"""The organisation directory (issue 11): a node's organisations, departments and staff,
imported from the CSV that IT teams keep, searched in Japanese locally and across the
node's peers, and shown in staff's profiles (``jp.kairan.org``, ``jp.kairan.department``,
``jp.kairan.title``).  spec/directory.md describes it; enabled in kairan.yaml with::

    features:
      directory:
        search_peers: ["kairan.town-b.example.jp"]   # asked by federated searches
        search_timeout_seconds: 3                    # per peer

The servers a federated search asks are ``search_peers`` when given, else the members of
the node's consortia (the consortium feature's service, found at start); partner accounts
(the partners feature) are never listed.  :func:`build` also takes both explicitly.
"""

from __future__ import annotations

from pathlib import Path

from homeserver.extensions import FeatureContext, Registry
from homeserver.municipal.directory import routes
from homeserver.municipal.directory.cli import cli
from homeserver.municipal.directory.federated import FederatedSearch
from homeserver.municipal.directory.service import (
    PROFILE_FIELDS,
    DirectoryService,
    PeerProvider,
    UserPredicate,
)

__all__ = ["DirectoryService", "build", "cli", "register"]


def build(
    context: FeatureContext,
    *,
    peers: PeerProvider | None = None,
    excluded: UserPredicate | None = None,
) -> tuple[DirectoryService, FederatedSearch]:
    """The directory's service and its federated search, with the servers a federated
    search asks (default: the ``search_peers`` setting) and the users it never lists."""
    service = DirectoryService(context, peers=peers, excluded=excluded)
    return service, FederatedSearch(service)


def register(registry: Registry, context: FeatureContext) -> None:
    service, federated = build(context)
    registry.add_migrations(Path(__file__).parent / "migrations")
    routes.register_routes(registry, service, federated)
    registry.add_managed_profile_fields(PROFILE_FIELDS)
    registry.add_user_directory_source(federated)
    registry.on_start(service.start)
