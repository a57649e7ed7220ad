"""Partner accounts and the last day each works.

Revision ID: partners_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "partners_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "partner_accounts",
        sa.Column("user_id", sa.String(255), primary_key=True),
        sa.Column("expires", sa.String(10), nullable=False),
        sa.Column("added_ts", sa.BigInteger(), nullable=False),
        sa.Column("changed_by", sa.String(255), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("partner_accounts")
