"""reports, and events by time

Reports of events, rooms and users (``/report``), listed in the admin API; and an index of
a room's events by ``origin_server_ts`` for ``timestamp_to_event``.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_events_room_ts", "events", ["room_id", "origin_server_ts"])
    op.create_table(
        "reports",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("reporter", sa.String(length=255), nullable=False),
        sa.Column("room_id", sa.String(length=255), nullable=True),
        sa.Column("event_id", sa.String(length=255), nullable=True),
        sa.Column("target_user_id", sa.String(length=255), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("score", sa.Integer(), nullable=True),
        sa.Column("received_ts", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reports")),
    )
    op.create_index("ix_reports_kind_received", "reports", ["kind", "received_ts"])


def downgrade() -> None:
    op.drop_index("ix_reports_kind_received", table_name="reports")
    op.drop_table("reports")
    op.drop_index("ix_events_room_ts", table_name="events")
