"""The directory's service: imports, local search, staff entries and their profile fields.

The federated side (asking the peers, checking their answers) is
:mod:`homeserver.municipal.directory.federated`.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from homeserver.common.errors import MatrixError, bad_json, not_found
from homeserver.extensions import FeatureContext
from homeserver.municipal.directory import csvfile, importing, rules, storage
from homeserver.municipal.directory.importing import ImportPlan, OrgKey, StaffChange

log = logging.getLogger(__name__)

#: The extended profile fields (Matrix 1.16) the directory sets for staff with an account;
#: users may not change them (the node's m.profile_fields capability lists them).
PROFILE_FIELDS = ("jp.kairan.org", "jp.kairan.department", "jp.kairan.title")
MAX_LIMIT = 50
DEFAULT_LIMIT = 20

#: Whether a user is kept out of the directory (partner accounts: homeserver/accounts).
UserPredicate = Callable[[str], Awaitable[bool]]
#: The servers a federated search asks (the feature's ``search_peers``, or later the
#: members of the node's consortia).
PeerProvider = Callable[[], Iterable[str]]


@dataclass
class ImportReport:
    errors: list[str] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    applied: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "errors": self.errors,
            "changes": self.changes,
            "counts": self.counts,
            "applied": self.applied,
        }


def result_json(entry: storage.Staff, org: storage.Org, server_name: str) -> dict[str, Any]:
    """A search result as clients and peers see it, with its organisation."""
    result: dict[str, Any] = {
        "name": entry.name,
        "reading": entry.reading,
        "department": entry.department,
        "title": entry.title,
        "extension": entry.extension,
        "org": {
            "code": org.org_code,
            "name": org.name,
            "reading": org.reading,
            "server": server_name,
        },
    }
    if entry.user_id:
        result["user_id"] = entry.user_id
    return result


class DirectoryService:
    def __init__(
        self,
        context: FeatureContext,
        *,
        peers: PeerProvider | None = None,
        excluded: UserPredicate | None = None,
    ) -> None:
        self.context = context
        self.db = context.db
        self.server_name = context.server_name
        self.clock = context.clock
        settings = context.settings
        #: Set by the ``search_peers`` setting, by ``build``, or at start from the node's
        #: consortia (the members but this node); none: local searches only.
        self.peers: PeerProvider | None = peers
        if "search_peers" in settings:
            self.peers = _static_peers(settings["search_peers"])
        self.excluded = excluded
        timeout = settings.get("search_timeout_seconds", 3.0)
        if not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout <= 0:
            raise ValueError("search_timeout_seconds must be a positive number")
        self.timeout_s = float(timeout)
        #: The running node (homeserver.node.api.NodeApi), once started.
        self.node: Any = None

    async def start(self, node: Any) -> None:
        """Once the node runs: the other features' services it uses, whatever the order
        the features are listed in (the consortium's members as peers, unless
        ``search_peers`` says otherwise; partner accounts never listed)."""
        self.node = node
        consortia = node.provided(CONSORTIUM_SERVICE)
        if self.peers is None and consortia is not None:
            own = self.server_name
            self.peers = lambda: sorted(s for s in consortia.members() if s != own)
        partners = node.provided(PARTNERS_SERVICE)
        if self.excluded is None and partners is not None:
            self.excluded = partners.is_partner

    def peer_servers(self) -> list[str]:
        """The servers a federated search asks now."""
        return list(self.peers()) if self.peers is not None else []

    # ------------------------------------------------------------- import

    async def import_csv(self, data: bytes, *, dry_run: bool) -> ImportReport:
        """Import a staff CSV (the CLI and the admin API): nothing changes when the file
        has an error, or on a dry run; either way the report lists every change."""
        parsed = csvfile.parse(data, self.server_name)
        report = ImportReport(errors=parsed.errors)
        if parsed.errors:
            return report
        by_org: dict[OrgKey, list[csvfile.StaffRow]] = defaultdict(list)
        for row in parsed.rows:
            by_org[row.org].append(row)
        async with self.db.write() as conn:
            plan = await self._plan(conn, by_org)
            if not dry_run:
                await self._apply(conn, plan)
        report.changes = [c.describe() for c in plan.changes]
        report.counts = plan.counts()
        report.applied = not dry_run
        if not dry_run:
            await self._sync_profiles(plan.changes)
        return report

    async def _plan(self, conn: Any, by_org: Mapping[OrgKey, list[csvfile.StaffRow]]) -> ImportPlan:
        plan = ImportPlan()
        for org_key, rows in by_org.items():
            org = await storage.get_org(conn, *org_key)
            stored = await storage.staff_of_org(conn, org.org_id) if org else []
            org_plan, changes = importing.plan_org(
                org_key, rows, stored, org.org_id if org else None, org.reading if org else None
            )
            plan.orgs.append(org_plan)
            plan.changes.extend(changes)
        return plan

    async def _apply(self, conn: Any, plan: ImportPlan) -> None:
        now = self.clock.now_ms()
        org_ids: dict[OrgKey, int] = {}
        for org in plan.orgs:
            if org.org_id is None:
                org_ids[org.org] = await storage.add_org(conn, *org.org, org.reading)
            else:
                org_ids[org.org] = org.org_id
                if org.reading_changed:
                    await storage.set_org_reading(conn, org.org_id, org.reading)
        removed = [c.staff_id for c in plan.changes if c.kind == "remove" and c.staff_id]
        await storage.delete_staff(conn, removed)
        for change in plan.changes:
            if change.after is None:
                continue
            search = importing.staff_search_text(change.after, change.org, change.org_reading)
            if change.kind == "add":
                org_id = org_ids[change.org]
                await storage.insert_staff(conn, org_id, change.key, change.after, search, now)
            elif change.staff_id is not None:
                await storage.update_staff(conn, change.staff_id, change.after, search, now)

    async def _sync_profiles(self, changes: Iterable[StaffChange]) -> None:
        """Set (or clear) the jp.kairan.* profile fields of the staff with an account here."""
        for change in changes:
            before = (change.before or {}).get("user_id")
            after = (change.after or {}).get("user_id")
            if before and before != after:
                await self._set_profile(str(before), None)
            if after:
                assert change.after is not None
                await self._set_profile(str(after), (change.org[1], change.after))

    async def _set_profile(self, user_id: str, entry: tuple[str, Mapping[str, Any]] | None) -> None:
        if self.node is None or not await self.node.user_exists(user_id):
            return
        if entry is None:
            values: dict[str, Any] = dict.fromkeys(PROFILE_FIELDS)
        else:
            org_name, staff = entry
            values = {
                "jp.kairan.org": org_name,
                "jp.kairan.department": staff["department"] or None,
                "jp.kairan.title": staff["title"] or None,
            }
        await self.node.set_managed_profile_fields(user_id, values)

    # ------------------------------------------------------------- search

    async def search_local(self, query: str, limit: int) -> tuple[list[dict[str, Any]], bool]:
        """This node's staff matching every word of ``query`` (400 for a bad query), and
        whether there were more than ``limit``."""
        try:
            terms = rules.query_terms(query)
        except ValueError as e:
            raise MatrixError(400, "M_INVALID_PARAM", str(e)) from None
        if not terms:
            return [], False
        limit = max(1, min(limit, MAX_LIMIT))
        wanted = (limit * 2 if self.excluded else limit) + 1
        async with self.db.read() as conn:
            found = await storage.search(conn, terms, wanted)
        results = []
        for entry, org in found:
            if entry.user_id and self.excluded is not None and await self.excluded(entry.user_id):
                continue
            results.append(result_json(entry, org, self.server_name))
        return results[:limit], len(results) > limit

    # ------------------------------------------------------------- admin

    async def organisations(self) -> list[dict[str, Any]]:
        async with self.db.read() as conn:
            orgs = await storage.list_orgs(conn)
            counts = await storage.count_staff(conn)
            listed = []
            for org in orgs:
                listed.append(
                    {
                        "org_id": org.org_id,
                        "code": org.org_code,
                        "name": org.name,
                        "reading": org.reading,
                        "staff": counts.get(org.org_id, 0),
                        "departments": await storage.departments(conn, org.org_id),
                    }
                )
        return listed

    async def get_staff(self, staff_id: int) -> dict[str, Any]:
        async with self.db.read() as conn:
            entry = await storage.get_staff(conn, staff_id)
            org = await storage.get_org_by_id(conn, entry.org_id) if entry else None
        if entry is None or org is None:
            raise not_found("No such staff entry")
        return {"staff_id": entry.staff_id, **result_json(entry, org, self.server_name)}

    async def put_staff(self, staff_id: int, body: Mapping[str, Any]) -> dict[str, Any]:
        """Change a staff entry's fields (those given; the others stay)."""
        async with self.db.write() as conn:
            entry = await storage.get_staff(conn, staff_id)
            org = await storage.get_org_by_id(conn, entry.org_id) if entry else None
            if entry is None or org is None:
                raise not_found("No such staff entry")
            values = _validated(org, entry.fields(), body, self.server_name)
            search = importing.staff_search_text(values, (org.org_code, org.name), org.reading)
            key = values["user_id"] or f"{values['name']}@{values['department']}"
            await storage.update_staff(
                conn, staff_id, values, search, self.clock.now_ms(), staff_key=key
            )
        change = StaffChange(
            "change", (org.org_code, org.name), entry.staff_key, None, entry.fields(), values,
            staff_id, org.reading,
        )  # fmt: skip
        await self._sync_profiles([change])
        return await self.get_staff(staff_id)


def _validated(
    org: storage.Org, current: Mapping[str, Any], body: Mapping[str, Any], server_name: str
) -> dict[str, Any]:
    """The entry's fields with ``body``'s changes, checked as an import checks a row."""
    cells = {k: str(v or "") for k, v in current.items()}
    for key, value in body.items():
        if key not in storage.STAFF_FIELDS:
            raise bad_json(f"unknown field {key!r} (known: {', '.join(storage.STAFF_FIELDS)})")
        if value is None and key in ("user_id", "title", "extension", "department"):
            value = ""
        if not isinstance(value, str):
            raise bad_json(f"{key} must be a string")
        cells[key] = value
    cells.update(org_code=org.org_code, org_name=org.name)
    errors: list[str] = []
    row = csvfile.check_row(cells, 0, server_name, errors)
    if row is None:
        raise MatrixError(400, "M_INVALID_PARAM", errors[0])
    return importing.row_values(row)


#: What the consortium and partners features provide (``Registry.provide``).
CONSORTIUM_SERVICE = "consortium.service"
PARTNERS_SERVICE = "partners.service"


def _static_peers(configured: Any) -> PeerProvider:
    if not isinstance(configured, list | tuple) or not all(
        isinstance(s, str) and s for s in configured
    ):
        raise ValueError("search_peers must be a list of server names")
    peers = tuple(configured)
    return lambda: peers
