"""sliding sync connection positions

Simplified Sliding Sync (MSC4186): what each connection (user, device, conn_id) was sent as
of each position it may send back, so that a restart keeps ``pos`` valid.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sliding_sync_positions",
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("device_id", sa.String(length=255), nullable=False),
        sa.Column("conn_id", sa.String(length=255), nullable=False),
        sa.Column("position", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("last_used_ts", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "user_id", "device_id", "conn_id", "position", name=op.f("pk_sliding_sync_positions")
        ),
    )


def downgrade() -> None:
    op.drop_table("sliding_sync_positions")
