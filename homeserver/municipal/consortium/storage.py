"""The consortium feature's table: every version of every document the node applied.

The newest version of each id is the one in force; older ones are kept (served on request,
so a node behind by several versions can catch up).  ``kairan consortium apply`` writes
here too; the running node reads what is new every few seconds.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Column, MetaData, String, Table, Text, func, select

metadata = MetaData()

documents = Table(
    "consortium_documents",
    metadata,
    Column("consortium_id", String(64), primary_key=True),
    Column("version", BigInteger, primary_key=True),
    #: The document as canonical JSON, signatures included.
    Column("document", Text, nullable=False),
    Column("applied_ts", BigInteger, nullable=False),
    #: Who it came from: "cli", or the server that served it.
    Column("source", String(255), nullable=False),
)


async def insert(
    conn: Any, consortium_id: str, version: int, document: str, applied_ts: int, source: str
) -> bool:
    """Store a version; False if that version is held already (left as it is)."""
    found = await conn.execute(
        select(documents.c.version).where(
            documents.c.consortium_id == consortium_id, documents.c.version == version
        )
    )
    if found.first() is not None:
        return False
    await conn.execute(
        documents.insert().values(
            consortium_id=consortium_id,
            version=version,
            document=document,
            applied_ts=applied_ts,
            source=source,
        )
    )
    return True


async def latest_versions(conn: Any) -> dict[str, int]:
    rows = await conn.execute(
        select(documents.c.consortium_id, func.max(documents.c.version)).group_by(
            documents.c.consortium_id
        )
    )
    return {str(row[0]): int(row[1]) for row in rows.all()}


async def get(conn: Any, consortium_id: str, version: int | None = None) -> str | None:
    """A version's JSON (the newest when ``version`` is None)."""
    query = select(documents.c.document).where(documents.c.consortium_id == consortium_id)
    if version is None:
        query = query.order_by(documents.c.version.desc()).limit(1)
    else:
        query = query.where(documents.c.version == version)
    row = (await conn.execute(query)).first()
    return None if row is None else str(row[0])
