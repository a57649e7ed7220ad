"""The organisation directory: organisations and their staff.

Revision ID: directory_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "directory_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "directory_orgs",
        sa.Column("org_id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("org_code", sa.String(6), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("reading", sa.Text(), nullable=False),
        sa.UniqueConstraint("org_code", "name", name="uq_directory_orgs_code_name"),
    )
    op.create_table(
        "directory_staff",
        sa.Column("staff_id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("org_id", sa.Integer(), sa.ForeignKey("directory_orgs.org_id"), nullable=False),
        sa.Column("staff_key", sa.String(512), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("reading", sa.Text(), nullable=False),
        sa.Column("department", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("extension", sa.String(32), nullable=False),
        sa.Column("user_id", sa.String(255), nullable=True),
        sa.Column("search", sa.Text(), nullable=False),
        sa.Column("updated_ts", sa.BigInteger(), nullable=False),
        sa.UniqueConstraint("org_id", "staff_key", name="uq_directory_staff_org_key"),
    )
    op.create_index("ix_directory_staff_user_id", "directory_staff", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_directory_staff_user_id", "directory_staff")
    op.drop_table("directory_staff")
    op.drop_table("directory_orgs")
