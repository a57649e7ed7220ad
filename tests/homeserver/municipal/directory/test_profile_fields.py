"""The directory's profile fields (jp.kairan.org, .department, .title) on both databases:
set by imports for staff with an account, kept from users, served over federation."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from tests.homeserver.conftest import running_node
from tests.homeserver.municipal.directory.helpers import (
    NEMURO,
    admin_of,
    directory_node,
    import_rows,
)

V3 = "/_matrix/client/v3"
FIELDS = ["jp.kairan.department", "jp.kairan.org", "jp.kairan.title"]


async def test_imports_set_the_fields_users_cannot_change(
    tmp_path: Path, db_url: str, db_url_b: str
) -> None:
    async with (
        directory_node(tmp_path / "a", db_url, tls=True) as node,
        node.client() as client,
    ):
        admin = await admin_of(node, client)
        yamada = await client.register("yamada")
        await client.register("suzuki")
        await import_rows(admin, NEMURO)
        me = f"{V3}/profile/{quote(yamada.user_id)}"
        profile = await client.ok("GET", me)
        assert profile == {
            "displayname": "yamada", "jp.kairan.org": "根室市役所",
            "jp.kairan.department": "総務部/総務課", "jp.kairan.title": "課長",
        }  # fmt: skip
        assert await yamada.ok("GET", me + "/jp.kairan.title") == {"jp.kairan.title": "課長"}
        caps = await yamada.ok("GET", f"{V3}/capabilities")
        assert caps["capabilities"]["m.profile_fields"] == {
            "enabled": True, "disallowed": FIELDS,
        }  # fmt: skip
        # The owner may not overwrite or delete them; other fields stay theirs.
        for method, body in (("PUT", {"jp.kairan.title": "市長"}), ("DELETE", None)):
            refused = await yamada.request(method, me + "/jp.kairan.title", body)
            assert (refused.status, refused.body["errcode"]) == (403, "M_FORBIDDEN")
        await yamada.ok("PUT", me + "/jp.kairan.nickname", {"jp.kairan.nickname": "やまちゃん"})
        # An admin on the client API is a user like any other here.
        refused = await admin.request("PUT", me + "/jp.kairan.org", {"jp.kairan.org": "x"})
        assert refused.status == 403

        # Another server asks for the profile over federation.
        async with running_node(tmp_path / "b", db_url_b, tls=True) as other:
            answer = await other.services.federation.client.request(
                node.server_name, "GET", "/_matrix/federation/v1/query/profile",
                query={"user_id": yamada.user_id},
            )  # fmt: skip
            assert answer["jp.kairan.org"] == "根室市役所"
            assert answer["jp.kairan.title"] == "課長"
            one = await other.services.federation.client.request(
                node.server_name, "GET", "/_matrix/federation/v1/query/profile",
                query={"user_id": yamada.user_id, "field": "jp.kairan.department"},
            )  # fmt: skip
            assert one == {"jp.kairan.department": "総務部/総務課"}

        # A promotion in the next file changes the field; leaving the list clears them.
        promoted = NEMURO[0].replace(",課長,", ",部長,")
        await import_rows(admin, [promoted, *NEMURO[1:]])
        assert (await client.ok("GET", me))["jp.kairan.title"] == "部長"
        await import_rows(admin, NEMURO[1:])
        assert await client.ok("GET", me) == {
            "displayname": "yamada", "jp.kairan.nickname": "やまちゃん",
        }  # fmt: skip
        # Staff without an account here get no profile; accounts are not created.
        missing = await client.request("GET", f"{V3}/profile/@tanaka:{node.server_name}")
        assert missing.status == 404
        # suzuki's fields came with the first import (his row had no よみ, no matter).
        suzuki = await client.ok("GET", f"{V3}/profile/@suzuki:{node.server_name}")
        assert suzuki["jp.kairan.department"] == "総務部/情報政策課"
