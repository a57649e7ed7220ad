"""read notifications kept for GET /notifications

``read_push_actions``: the push actions a read receipt took out of ``event_push_actions``
(whose rows are the unread counts), kept 30 days after they were read so that
``/notifications`` lists read notifications too (``read: true``), as Synapse does.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "read_push_actions",
        sa.Column("user_id", sa.String(255), primary_key=True),
        sa.Column("room_id", sa.String(255), primary_key=True),
        sa.Column("stream_ordering", sa.BigInteger(), primary_key=True),
        sa.Column("highlight", sa.Boolean(), nullable=False),
        sa.Column("actions", sa.Text(), nullable=True),
        sa.Column("thread_id", sa.String(255), nullable=False, server_default="main"),
        sa.Column("read_ts", sa.BigInteger(), nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_read_push_actions_read_ts", "read_push_actions", ["read_ts"])


def downgrade() -> None:
    op.drop_index("ix_read_push_actions_read_ts", "read_push_actions")
    op.drop_table("read_push_actions")
