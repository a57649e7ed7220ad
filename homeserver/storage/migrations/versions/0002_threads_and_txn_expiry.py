"""notification threads, transaction ID expiry

Push action rows record the thread of their event (existing rows: the main timeline), and
client transaction IDs are indexed by age for the hourly deletion of those over a day old.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "event_push_actions",
        sa.Column("thread_id", sa.String(length=255), nullable=False, server_default="main"),
    )
    with op.batch_alter_table("event_txn_ids", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_event_txn_ids_created_ts"), ["created_ts"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("event_txn_ids", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_event_txn_ids_created_ts"))
    with op.batch_alter_table("event_push_actions", schema=None) as batch_op:
        batch_op.drop_column("thread_id")
