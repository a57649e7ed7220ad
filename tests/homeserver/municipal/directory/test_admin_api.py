"""The directory's admin API on both databases: import (the CLI's code path), the
organisations, a staff entry read and changed; only admins."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from tests.homeserver.municipal.directory.helpers import (
    ADMIN,
    NEMURO,
    admin_of,
    csv_bytes,
    directory_node,
    import_rows,
    names,
    search,
)


async def test_admin_api(tmp_path: Path, db_url: str) -> None:
    async with directory_node(tmp_path / "node", db_url) as node, node.client() as client:
        admin = await admin_of(node, client)
        yamada = await client.register("yamada")

        dry = await import_rows(admin, NEMURO, dry_run=True)
        assert dry["applied"] is False and dry["counts"]["add"] == 5
        assert dry["changes"][0].startswith("+ 012238 根室市役所: 山田 太郎")
        assert (await admin.ok("GET", ADMIN + "/organisations"))["organisations"] == []

        bad = await admin.request(
            "POST", ADMIN + "/import", data=csv_bytes([*NEMURO, "012239,x,,,y,,,,"], "cp932")
        )
        assert bad.status == 400
        assert bad.body["errors"] == [
            "line 7: 団体コード/org_code 012239 has a wrong check digit (expected 012238)"
        ]
        assert bad.body["applied"] is False

        done = await admin.ok("POST", ADMIN + "/import", data=csv_bytes(NEMURO, "cp932"))
        assert done["applied"] is True and done["counts"] == {"add": 5, "change": 0, "remove": 0}
        orgs = (await admin.ok("GET", ADMIN + "/organisations"))["organisations"]
        assert [(o["code"], o["name"], o["staff"]) for o in orgs] == [
            ("012238", "市立根室病院", 1), ("012238", "根室市役所", 3),
            ("012238", "根室市教育委員会", 1),
        ]  # fmt: skip
        town = next(o for o in orgs if o["name"] == "根室市役所")
        assert town["departments"] == ["総務部/情報政策課", "総務部/総務課"]
        assert town["reading"] == "ねむろしやくしょ"

        found = await search(admin, "山田")
        staff_id = None
        entry_ids = []  # the entries are numbered
        for candidate in range(1, 50):
            response = await admin.request("GET", f"{ADMIN}/staff/{candidate}")
            if response.status == 200:
                entry_ids.append(candidate)
                if response.body["name"] == "山田 太郎":
                    staff_id = candidate
        assert len(entry_ids) == 5 and staff_id is not None
        assert found["results"][0]["user_id"] == yamada.user_id

        changed = await admin.ok(
            "PUT", f"{ADMIN}/staff/{staff_id}", {"title": "部長", "department": "総務部>企画課"}
        )
        assert (changed["title"], changed["department"]) == ("部長", "総務部/企画課")
        assert names(await search(admin, "企画")) == ["山田 太郎"]
        profile = await client.ok("GET", f"/_matrix/client/v3/profile/{quote(yamada.user_id)}")
        assert profile["jp.kairan.title"] == "部長"
        assert profile["jp.kairan.department"] == "総務部/企画課"
        # A re-import of the same file puts 山田 back: the file is the reference.
        again = await import_rows(admin, NEMURO)
        assert again["counts"] == {"add": 0, "change": 1, "remove": 0}

        for body, errcode in (
            ({"title": 5}, "M_BAD_JSON"),
            ({"nickname": "x"}, "M_BAD_JSON"),
            ({"reading": "abc"}, "M_INVALID_PARAM"),
            ({"user_id": "@x:elsewhere.example"}, "M_INVALID_PARAM"),
            ({"name": ""}, "M_INVALID_PARAM"),
        ):
            refused = await admin.request("PUT", f"{ADMIN}/staff/{staff_id}", body)
            assert (refused.status, refused.body["errcode"]) == (400, errcode), body
        for path in ("/staff/999999", "/staff/abc", "/staff/-1", "/staff/1" + "0" * 30):
            missing = await admin.request("GET", ADMIN + path)
            assert (missing.status, missing.body["errcode"]) == (404, "M_NOT_FOUND"), path

        # Only admins; not without a token.
        for method, path in (("GET", "/organisations"), ("POST", "/import"),
                             ("GET", f"/staff/{staff_id}"), ("PUT", f"/staff/{staff_id}")):  # fmt: skip
            denied = await yamada.request(method, ADMIN + path, {})
            assert (denied.status, denied.body["errcode"]) == (403, "M_FORBIDDEN"), path
            anonymous = await client.request(method, ADMIN + path, {})
            assert anonymous.status == 401, path
        too_big = await admin.request("POST", ADMIN + "/import", data=b"x" * (21 * 1024 * 1024))
        assert (too_big.status, too_big.body["errcode"]) == (413, "M_TOO_LARGE")
