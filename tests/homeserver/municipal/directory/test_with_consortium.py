"""The directory with the other features of issue 11: a federated search asks the members of
the node's consortia (no ``search_peers`` needed), a server that leaves the consortium is no
longer asked, and partner accounts are never listed, whatever order the features are
enabled in."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from homeserver.config.listeners import FeatureSettings
from homeserver.municipal.partners.service import PartnerService
from tests.homeserver.municipal.consortium.docs import next_version
from tests.homeserver.municipal.consortium.nodes import running, service_of
from tests.homeserver.municipal.directory.helpers import (
    NEMURO,
    admin_of,
    import_rows,
    names,
    search,
)
from tests.homeserver.municipal.groups.nodes import hold_consortium

BETSUKAI = ["016918,別海町役場,,総務課,田中 一郎,たなか いちろう,課長,201,tanaka"]


def features(*, partners_first: bool) -> dict[str, tuple[FeatureSettings, ...]]:
    consortium = FeatureSettings("consortium", {"poll_seconds": 0.2})
    directory = FeatureSettings("directory", {"search_timeout_seconds": 5})
    partners = FeatureSettings("partners", {})
    order = (partners, directory, consortium) if partners_first else (consortium, directory)
    return {"features": order}


async def test_a_federated_search_asks_the_consortium_members(
    tmp_path: Path, db_url: str, db_url_b: str
) -> None:
    specs = [
        ("b", db_url_b, features(partners_first=False)),
        # On A the directory and partners come before the consortium in kairan.yaml.
        ("a", db_url, features(partners_first=True)),
    ]
    async with running(tmp_path, *specs) as (b, a), a.client() as ca, b.client() as cb:
        await import_rows(await admin_of(a, ca), NEMURO)
        await import_rows(await admin_of(b, cb), BETSUKAI)
        alice = await ca.register("alice")

        # No consortium yet: nobody to ask.
        assert names(await search(alice, "課長")) == ["田中 健", "山田 太郎"]
        doc = await hold_consortium([a, b], [a, b])
        assert names(await search(alice, "課長")) == ["田中 一郎", "田中 健", "山田 太郎"]

        # A partner account listed in A's staff CSV is never shown.
        partners: PartnerService = a.services.extensions.provided["partners.service"]
        await partners.set(f"@yamada:{a.server_name}", dt.date(2027, 3, 31), "test")
        assert names(await search(alice, "課長")) == ["田中 一郎", "田中 健"]

        # B removed from the consortium (a new version on A): no longer asked.
        await service_of(a).apply(next_version(doc, remove=(b.server_name,)), "test")
        assert names(await search(alice, "課長")) == ["田中 健"]
