"""User directory search for Japanese names: without spaces, by kana reading, by part."""

from __future__ import annotations

import pytest

from homeserver.rooms.directory import matches, normalise
from tests.homeserver.client import Client
from tests.homeserver.conftest import Node

V3 = "/_matrix/client/v3"


@pytest.mark.parametrize(
    ("term", "name", "found"),
    [
        ("山田太郎", "山田 太郎", True),
        ("山田　太郎", "山田 太郎", True),  # ideographic space
        ("やまだ", "山田 太郎", True),
        ("ヤマダ", "山田 太郎", True),
        ("ﾔﾏﾀﾞ", "山田 太郎", True),  # half-width katakana
        ("太郎", "山田 太郎", True),
        ("たろう", "山田 太郎", True),
        ("佐藤", "山田 太郎", False),
        ("YAMADA", "yamada.taro", True),
        ("", "山田 太郎", False),
    ],
)
def test_matching(term: str, name: str, found: bool) -> None:
    assert matches(term, name) is found


def test_normalise() -> None:
    assert normalise("ＡＢＣ　カナ") == "abcかな"


async def test_search_over_http(node: Node, client: Client) -> None:
    yamada = await client.register("yamada")
    await yamada.ok(
        "PUT", f"{V3}/profile/{yamada.user_id}/displayname", {"displayname": "山田 太郎"}
    )
    sato = await client.register("sato")
    await sato.ok("PUT", f"{V3}/profile/{sato.user_id}/displayname", {"displayname": "佐藤 花子"})
    for term, expected in (
        ("山田太郎", [yamada.user_id]),
        ("はなこ", [sato.user_id]),
        ("子", [sato.user_id]),
    ):
        found = await sato.ok("POST", f"{V3}/user_directory/search", {"search_term": term})
        assert [r["user_id"] for r in found["results"]] == expected, term
    many = await sato.ok("POST", f"{V3}/user_directory/search", {"search_term": "a", "limit": 1})
    assert len(many["results"]) == 1 and many["limited"] is True
