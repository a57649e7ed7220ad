"""Partner accounts (issue 11): outsiders who work with staff for a time (DMAT, volunteers,
contractors).  A partner account is marked as such in its profile, absent from the user
directory, sees only the rooms it is invited to, and stops working after its last day
(spec/partners.md).  Enabled in kairan.yaml with::

    features:
      partners:
        timezone: Asia/Tokyo      # the day an expiry date ends in (default)

It adds ``--partner --expires YYYY-MM-DD`` to ``kairan user add``, partners' dates to
``kairan user list``, and the ``kairan partner`` commands (:mod:`.commands`).
"""

from __future__ import annotations

from pathlib import Path

from homeserver.extensions import FeatureContext, Registry
from homeserver.municipal.partners import routes
from homeserver.municipal.partners.commands import cli, command_extensions
from homeserver.municipal.partners.service import PartnerService, PartnerSettings

__all__ = ["SERVICE", "cli", "command_extensions", "register"]

#: The name other features find the PartnerService by (``NodeApi.provided``).
SERVICE = "partners.service"


def register(registry: Registry, context: FeatureContext) -> None:
    service = PartnerService(PartnerSettings.parse(context.settings), context.db, context.clock)
    registry.add_migrations(Path(__file__).parent / "migrations")
    registry.add_event_policy(service.policy)
    registry.add_login_check(service.logins)
    registry.add_directory_filter(service.directory)
    registry.add_profile_fields(service.profile)
    routes.register_routes(registry, service)
    registry.provide(SERVICE, service)
