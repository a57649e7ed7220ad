"""What an import changes (pure): the file's rows against the staff already stored.

An import *replaces* the staff list of every organisation the file names: a row whose
person (its Matrix ID, else its name within its department) is not stored yet is added,
one whose fields differ is changed, and stored staff of those organisations that the file
no longer lists are removed.  Organisations the file does not name are left alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from homeserver.municipal.directory import rules
from homeserver.municipal.directory.csvfile import StaffRow
from homeserver.municipal.directory.storage import STAFF_FIELDS, Staff

OrgKey = tuple[str, str]


@dataclass(frozen=True)
class StaffChange:
    kind: Literal["add", "change", "remove"]
    org: OrgKey
    key: str
    #: The file's line (None for a removal).
    line: int | None
    before: Mapping[str, Any] | None
    after: Mapping[str, Any] | None
    #: The stored entry (None for an addition).
    staff_id: int | None = None
    #: The organisation's reading, for the search text.
    org_reading: str = ""

    def describe(self) -> str:
        code, name = self.org
        where = f"{code} {name}"
        if self.kind == "add":
            assert self.after is not None
            return f"+ {where}: {_summary(self.after)} (line {self.line})"
        if self.kind == "remove":
            assert self.before is not None
            return f"- {where}: {_summary(self.before)}"
        assert self.before is not None and self.after is not None
        changed = [
            f"{f} {self.before[f] or '-'!s} -> {self.after[f] or '-'!s}"
            for f in STAFF_FIELDS
            if self.before[f] != self.after[f]
        ] or ["organisation reading"]
        return f"~ {where}: {self.after['name']}: {', '.join(changed)} (line {self.line})"


def _summary(values: Mapping[str, Any]) -> str:
    details = [str(values[f]) for f in ("department", "title") if values.get(f)]
    if values.get("user_id"):
        details.append(str(values["user_id"]))
    text = str(values["name"])
    return f"{text} ({', '.join(details)})" if details else text


@dataclass
class OrgPlan:
    org: OrgKey
    reading: str
    #: None: the organisation is new.
    org_id: int | None
    reading_changed: bool = False


@dataclass
class ImportPlan:
    orgs: list[OrgPlan] = field(default_factory=list)
    changes: list[StaffChange] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        counts = {"add": 0, "change": 0, "remove": 0}
        for change in self.changes:
            counts[change.kind] += 1
        return counts


def row_values(row: StaffRow) -> dict[str, Any]:
    """What a row stores: its reading derived from the name's kanji when not given."""
    return {
        "name": row.name,
        "reading": row.reading or rules.reading(row.name),
        "department": rules.join_department(row.department),
        "title": row.title,
        "extension": row.extension,
        "user_id": row.user_id,
    }


def org_reading(rows: Sequence[StaffRow]) -> str:
    """The organisation's reading: the first the file gives, else derived from its name."""
    given = next((r.org_reading for r in rows if r.org_reading), "")
    return given or rules.reading(rows[0].org_name)


def plan_org(
    org: OrgKey,
    rows: Sequence[StaffRow],
    stored: Sequence[Staff],
    org_id: int | None,
    stored_reading: str | None,
) -> tuple[OrgPlan, list[StaffChange]]:
    """The changes that make ``stored`` (one organisation's staff) what ``rows`` say."""
    reading = org_reading(rows)
    plan = OrgPlan(org, reading, org_id, org_id is not None and stored_reading != reading)
    by_key = {s.staff_key: s for s in stored}
    changes: list[StaffChange] = []
    for row in rows:
        after = row_values(row)
        existing = by_key.pop(row.key, None)
        if existing is None:
            changes.append(StaffChange("add", org, row.key, row.line, None, after, None, reading))
        elif existing.fields() != after or plan.reading_changed:
            # A new organisation reading changes every member's search text.
            changes.append(
                StaffChange(
                    "change", org, row.key, row.line, existing.fields(), after,
                    existing.staff_id, reading,
                )
            )  # fmt: skip
    for gone in by_key.values():
        changes.append(
            StaffChange("remove", org, gone.staff_key, None, gone.fields(), None, gone.staff_id)
        )
    return plan, changes


def staff_search_text(values: Mapping[str, Any], org: OrgKey, org_reading: str) -> str:
    return rules.search_text(
        [
            (str(values["name"]), str(values["reading"])),
            (str(values["department"]), None),
            (str(values["title"]), None),
            (org[0], ""),
            (org[1], org_reading),
        ]
    )
