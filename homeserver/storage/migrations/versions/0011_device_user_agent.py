"""the user agent a device was last seen with

``devices.last_seen_user_agent``: the ``User-Agent`` of the device's last request, recorded
beside its last-seen address and time (``whois`` answers it per connection, as Synapse).

Revision ID: 0011
Revises: 0009
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ALTER TABLE ... ADD COLUMN: a nullable column, no copy of the table.
    op.add_column("devices", sa.Column("last_seen_user_agent", sa.Text(), nullable=True))


def downgrade() -> None:
    # Plain ALTER TABLE ... DROP COLUMN (SQLite 3.35 and later), not batch mode's copy:
    # SQLite refuses to drop a table that other tables' rows point at.
    op.execute("ALTER TABLE devices DROP COLUMN last_seen_user_agent")
