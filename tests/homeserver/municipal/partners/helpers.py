"""A node with the partners feature, an admin, and partner accounts made over the admin API."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from homeserver.config.listeners import FeatureSettings
from tests.homeserver.client import Client, User
from tests.homeserver.conftest import Node, running_node

ADMIN = "/_kairan/admin/v1/partners"
CLIENT = "/_matrix/client/unstable/jp.kairan/partners"
TOKYO = ZoneInfo("Asia/Tokyo")
PARTNERS = (FeatureSettings("partners", {}),)


def day(offset: int) -> str:
    """Today (in Tokyo) plus ``offset`` days, as YYYY-MM-DD."""
    return (dt.datetime.now(TOKYO).date() + dt.timedelta(days=offset)).isoformat()


@asynccontextmanager
async def partners_node(directory: Path, db_url: str, **config: Any) -> AsyncIterator[Node]:
    async with running_node(directory, db_url, features=PARTNERS, **config) as node:
        yield node


async def admin_of(node: Node, client: Client) -> User:
    admin = await client.register("admin")
    await node.services.accounts.set_admin(admin.user_id, True)
    node.services.accounts._token_cache.clear()
    return admin


async def make_partner(admin: User, user_id: str, expires: str) -> Any:
    return await admin.ok("PUT", f"{ADMIN}/{user_id}", {"expires": expires})


async def login(client: Client, user: str) -> Any:
    return await client.request(
        "POST",
        "/_matrix/client/v3/login",
        {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": user},
         "password": "correct horse"},
    )  # fmt: skip
