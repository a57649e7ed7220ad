"""Every version of every consortium document a node applied.

Revision ID: consortium_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "consortium_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "consortium_documents",
        sa.Column("consortium_id", sa.String(64), primary_key=True),
        sa.Column("version", sa.BigInteger(), primary_key=True),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("applied_ts", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.String(255), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("consortium_documents")
