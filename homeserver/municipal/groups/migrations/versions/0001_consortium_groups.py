"""Consortium user groups: the groups a node made, their themed rooms, and the requests
``kairan group`` hands to the running node.

Revision ID: groups_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "groups_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "consortium_groups",
        sa.Column("space_id", sa.String(255), primary_key=True),
        sa.Column("consortium_id", sa.String(64), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("creator", sa.String(255), nullable=False),
        sa.Column("created_ts", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "consortium_group_rooms",
        sa.Column("space_id", sa.String(255), primary_key=True),
        sa.Column("room_id", sa.String(255), primary_key=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("added_ts", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "consortium_group_requests",
        sa.Column("request_id", sa.String(64), primary_key=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("created_ts", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("consortium_group_requests")
    op.drop_table("consortium_group_rooms")
    op.drop_table("consortium_groups")
