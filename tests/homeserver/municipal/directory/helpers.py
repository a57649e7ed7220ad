"""What the directory's tests share: a node with the feature, an admin, CSV files."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from homeserver.config.listeners import FeatureSettings
from tests.homeserver.client import Client, User
from tests.homeserver.conftest import Node, running_node

SEARCH = "/_matrix/client/unstable/jp.kairan/directory/search"
ADMIN = "/_kairan/admin/v1/directory"
HEADER = "団体コード,団体名,団体名よみ,部署,氏名,よみ,役職,内線,Matrix ID\n"

#: Nemuro city (012238): the town office, its board of education and its hospital.
NEMURO = [
    "012238,根室市役所,ねむろしやくしょ,総務部/総務課,山田 太郎,やまだ たろう,課長,1201,yamada",
    "012238,根室市役所,,総務部/総務課,佐藤 花子,サトウ ハナコ,主任,1202,",
    "012238,根室市役所,,総務部 > 情報政策課,鈴木 一郎,,係長,1210,suzuki",
    "012238,根室市教育委員会,,学校教育課,高橋 美咲,たかはし みさき,指導主事,3101,",
    "012238,市立根室病院,しりつねむろびょういん,事務局/医事課,田中 健,たなか けん,課長補佐,5001,",
]


def directory(**settings: Any) -> tuple[FeatureSettings, ...]:
    return (FeatureSettings("directory", settings),)


def csv_bytes(rows: Sequence[str], encoding: str = "utf-8") -> bytes:
    return (HEADER + "\n".join(rows) + "\n").encode(encoding)


@asynccontextmanager
async def directory_node(
    path: Path, db_url: str, *, tls: bool = False, **settings: Any
) -> AsyncIterator[Node]:
    async with running_node(path, db_url, tls=tls, features=directory(**settings)) as node:
        yield node


async def admin_of(node: Node, client: Client) -> User:
    await node.services.admin.add_user("root", "root password", admin=True)
    body = await client.ok(
        "POST", "/_matrix/client/v3/login",
        {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "root"},
         "password": "root password"},
    )  # fmt: skip
    return User(client, body["user_id"], body["access_token"], body["device_id"])


async def import_rows(admin: User, rows: Sequence[str], *, dry_run: bool = False) -> Any:
    return await admin.ok(
        "POST",
        ADMIN + "/import",
        data=csv_bytes(rows),
        params={"dry_run": "true" if dry_run else "false"},
        headers={"Content-Type": "text/csv"},
    )


async def search(user: User, term: str, **body: Any) -> Any:
    return await user.ok("POST", SEARCH, {"search_term": term, **body})


def names(response: Any) -> list[str]:
    return [r["name"] for r in response["results"]]
