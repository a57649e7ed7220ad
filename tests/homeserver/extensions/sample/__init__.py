"""A small feature that uses every extension point, for the tests (and as an example).

Laid out as a municipal feature is: pure rules (``rules.py``), its own storage and
migrations (``storage.py``, ``migrations/``), its service (``service.py``: the policies,
filters and checks), its routes (``routes.py``) and a command group (``cli``).  Enabled in
a node's kairan.yaml with::

    features:
      "tests.homeserver.extensions.sample:register":
        blocked_words: ["禁止"]
"""

from __future__ import annotations

from pathlib import Path

import click

from homeserver.extensions import FeatureContext, Registry
from tests.homeserver.extensions.sample import routes
from tests.homeserver.extensions.sample.service import SampleService


def register(registry: Registry, context: FeatureContext) -> None:
    service = SampleService(context)
    registry.add_migrations(Path(__file__).parent / "migrations")
    registry.add_event_policy(service.policy)
    registry.add_peer_policy(service.peers)
    registry.add_event_listener(service.seen)
    registry.add_sync_extension(service.sync_extension)
    registry.add_upload_filter(service.uploads)
    registry.add_login_check(service.logins)
    registry.add_user_directory_source(service.users)
    registry.add_managed_profile_fields(["jp.kairan.sample"])
    registry.add_middleware(routes.zone_middleware("internet"), zones=["internet"])
    routes.register_routes(registry, service)
    registry.on_start(service.start)
    registry.on_stop(service.stop)


@click.group("sample")
def cli() -> None:
    """The sample feature's commands."""


@cli.command("hello")
@click.argument("name")
def hello(name: str) -> None:
    """Greets NAME (shows that a feature's command group reaches the kairan command)."""
    click.echo(f"こんにちは {name}")
