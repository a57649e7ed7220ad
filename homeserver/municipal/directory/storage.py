"""The directory's tables (created by its migration ``0001``) and the statements on them.

Search: each staff row carries ``search``, its normalised search text (name, reading,
department, title and the organisation's code, name and reading, with the readings of
kanji; rules.search_text), matched with ``LIKE '%term%'`` (wildcards escaped), one
condition per query word.  A scan of one node's rows (12,500 in the benchmark) costs a
few milliseconds on SQLite and PostgreSQL alike and needs no extension (pg_trgm) or
index to keep up to date; see spec/directory.md for the figures.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    func,
    select,
)

from homeserver.municipal.directory.rules import like_pattern

metadata = MetaData()

orgs = Table(
    "directory_orgs",
    metadata,
    Column("org_id", Integer, primary_key=True, autoincrement=True),
    Column("org_code", String(6), nullable=False),
    Column("name", String(255), nullable=False),
    Column("reading", Text, nullable=False),
    UniqueConstraint("org_code", "name", name="uq_directory_orgs_code_name"),
)

staff = Table(
    "directory_staff",
    metadata,
    Column("staff_id", Integer, primary_key=True, autoincrement=True),
    Column("org_id", Integer, ForeignKey("directory_orgs.org_id"), nullable=False),
    Column("staff_key", String(512), nullable=False),
    Column("name", Text, nullable=False),
    Column("reading", Text, nullable=False),
    Column("department", Text, nullable=False),
    Column("title", Text, nullable=False),
    Column("extension", String(32), nullable=False),
    Column("user_id", String(255), nullable=True, index=True),
    Column("search", Text, nullable=False),
    Column("updated_ts", BigInteger, nullable=False),
    UniqueConstraint("org_id", "staff_key", name="uq_directory_staff_org_key"),
)

#: The fields of a staff entry an import or the admin API sets.
STAFF_FIELDS = ("name", "reading", "department", "title", "extension", "user_id")


@dataclass(frozen=True)
class Org:
    org_id: int
    org_code: str
    name: str
    reading: str


@dataclass(frozen=True)
class Staff:
    staff_id: int
    org_id: int
    staff_key: str
    name: str
    reading: str
    department: str
    title: str
    extension: str
    user_id: str | None

    def fields(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in STAFF_FIELDS}


def _org(row: Any) -> Org:
    return Org(row.org_id, row.org_code, row.name, row.reading)


def _staff(row: Any) -> Staff:
    return Staff(
        row.staff_id, row.org_id, row.staff_key, row.name, row.reading, row.department,
        row.title, row.extension, row.user_id,
    )  # fmt: skip


_STAFF_COLUMNS = [staff.c[c] for c in ("staff_id", "org_id", "staff_key", *STAFF_FIELDS)]


async def list_orgs(conn: Any) -> list[Org]:
    rows = await conn.execute(select(orgs).order_by(orgs.c.org_code, orgs.c.name))
    return [_org(r) for r in rows.all()]


async def get_org(conn: Any, org_code: str, name: str) -> Org | None:
    row = (
        await conn.execute(select(orgs).where(orgs.c.org_code == org_code, orgs.c.name == name))
    ).first()
    return None if row is None else _org(row)


async def get_org_by_id(conn: Any, org_id: int) -> Org | None:
    row = (await conn.execute(select(orgs).where(orgs.c.org_id == org_id))).first()
    return None if row is None else _org(row)


async def add_org(conn: Any, org_code: str, name: str, reading: str) -> int:
    result = await conn.execute(orgs.insert().values(org_code=org_code, name=name, reading=reading))
    return int(result.inserted_primary_key[0])


async def set_org_reading(conn: Any, org_id: int, reading: str) -> None:
    await conn.execute(orgs.update().where(orgs.c.org_id == org_id).values(reading=reading))


async def staff_of_org(conn: Any, org_id: int) -> list[Staff]:
    rows = await conn.execute(
        select(*_STAFF_COLUMNS).where(staff.c.org_id == org_id).order_by(staff.c.staff_id)
    )
    return [_staff(r) for r in rows.all()]


async def get_staff(conn: Any, staff_id: int) -> Staff | None:
    row = (await conn.execute(select(*_STAFF_COLUMNS).where(staff.c.staff_id == staff_id))).first()
    return None if row is None else _staff(row)


async def staff_of_user(conn: Any, user_id: str) -> Staff | None:
    row = (
        await conn.execute(
            select(*_STAFF_COLUMNS).where(staff.c.user_id == user_id).order_by(staff.c.staff_id)
        )
    ).first()
    return None if row is None else _staff(row)


async def insert_staff(
    conn: Any, org_id: int, staff_key: str, values: Mapping[str, Any], search: str, now: int
) -> int:
    result = await conn.execute(
        staff.insert().values(
            org_id=org_id, staff_key=staff_key, search=search, updated_ts=now, **values
        )
    )
    return int(result.inserted_primary_key[0])


async def update_staff(
    conn: Any, staff_id: int, values: Mapping[str, Any], search: str, now: int, **extra: Any
) -> None:
    await conn.execute(
        staff.update()
        .where(staff.c.staff_id == staff_id)
        .values(search=search, updated_ts=now, **values, **extra)
    )


async def delete_staff(conn: Any, staff_ids: Iterable[int]) -> None:
    ids = list(staff_ids)
    for start in range(0, len(ids), 500):
        await conn.execute(staff.delete().where(staff.c.staff_id.in_(ids[start : start + 500])))


async def count_staff(conn: Any) -> dict[int, int]:
    rows = await conn.execute(
        select(staff.c.org_id, func.count()).select_from(staff).group_by(staff.c.org_id)
    )
    return {int(org_id): int(n) for org_id, n in rows.all()}


async def departments(conn: Any, org_id: int) -> list[str]:
    rows = await conn.execute(select(staff.c.department).where(staff.c.org_id == org_id).distinct())
    return sorted(str(d) for (d,) in rows.all() if d)


async def search(conn: Any, terms: Sequence[str], limit: int) -> list[tuple[Staff, Org]]:
    """Staff whose search text contains every term (each literally, wildcards escaped),
    by reading, at most ``limit``."""
    conditions = [staff.c.search.like(like_pattern(t), escape="\\") for t in terms]
    query = (
        select(*_STAFF_COLUMNS, orgs.c.org_code, orgs.c.name.label("org_name"),
               orgs.c.reading.label("org_reading"))
        .select_from(staff.join(orgs, staff.c.org_id == orgs.c.org_id))
        .where(and_(*conditions))
        .order_by(staff.c.reading, staff.c.staff_id)
        .limit(limit)
    )  # fmt: skip
    rows = await conn.execute(query)
    return [(_staff(r), Org(r.org_id, r.org_code, r.org_name, r.org_reading)) for r in rows.all()]
