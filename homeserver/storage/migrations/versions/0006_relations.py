"""threads

Each room's threads with the stream position of their latest reply, which orders
``GET /v1/rooms/{roomId}/threads`` without reading every event of the room; filled from the
``m.thread`` relations already stored.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "threads",
        sa.Column("room_id", sa.String(length=255), nullable=False),
        sa.Column("thread_id", sa.String(length=255), nullable=False),
        sa.Column("latest_stream_ordering", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("room_id", "thread_id", name=op.f("pk_threads")),
    )
    with op.batch_alter_table("threads", schema=None) as batch_op:
        batch_op.create_index(
            "ix_threads_room_latest", ["room_id", "latest_stream_ordering"], unique=False
        )
    op.execute(
        "INSERT INTO threads (room_id, thread_id, latest_stream_ordering)"
        " SELECT e.room_id, r.relates_to_id, MAX(e.stream_ordering)"
        " FROM event_relations r JOIN events e ON e.event_id = r.event_id"
        " WHERE r.relation_type = 'm.thread' AND NOT e.outlier"
        " AND e.rejected_reason IS NULL AND NOT e.soft_failed AND e.redacted_by IS NULL"
        " GROUP BY e.room_id, r.relates_to_id"
    )


def downgrade() -> None:
    with op.batch_alter_table("threads", schema=None) as batch_op:
        batch_op.drop_index("ix_threads_room_latest")
    op.drop_table("threads")
