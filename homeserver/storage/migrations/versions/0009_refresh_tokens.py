"""refresh tokens, login tokens, account locking and suspension

Access tokens may expire and carry the refresh token issued with them (Matrix 1.3); refresh
tokens and the one-use ``m.login.token`` tokens of ``/login/get_token`` get tables; users get
the ``locked`` and ``suspended`` flags of account moderation.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ALTER TABLE ... ADD COLUMN, never batch mode's copy of the table: SQLite refuses
    # to drop a users table that other tables' rows point at.
    false = sa.false()
    op.add_column("users", sa.Column("locked", sa.Boolean(), nullable=False, server_default=false))
    op.add_column(
        "users", sa.Column("suspended", sa.Boolean(), nullable=False, server_default=false)
    )
    op.add_column("access_tokens", sa.Column("valid_until_ms", sa.BigInteger(), nullable=True))
    op.add_column(
        "access_tokens",
        sa.Column("refresh_token_sha256", sa.LargeBinary(length=32), nullable=True),
    )
    op.add_column(
        "access_tokens", sa.Column("used", sa.Boolean(), nullable=False, server_default=false)
    )
    op.create_index(
        op.f("ix_access_tokens_refresh_token_sha256"), "access_tokens", ["refresh_token_sha256"]
    )
    op.create_table(
        "refresh_tokens",
        sa.Column("token_sha256", sa.LargeBinary(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("device_id", sa.String(length=255), nullable=False),
        sa.Column("created_ts", sa.BigInteger(), nullable=False),
        sa.Column("expiry_ts", sa.BigInteger(), nullable=True),
        sa.Column("next_token_sha256", sa.LargeBinary(length=32), nullable=True),
        sa.PrimaryKeyConstraint("token_sha256", name=op.f("pk_refresh_tokens")),
    )
    op.create_index(op.f("ix_refresh_tokens_user_id"), "refresh_tokens", ["user_id"])
    op.create_index(
        op.f("ix_refresh_tokens_next_token_sha256"), "refresh_tokens", ["next_token_sha256"]
    )
    op.create_table(
        "login_tokens",
        sa.Column("token_sha256", sa.LargeBinary(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("expiry_ts", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("token_sha256", name=op.f("pk_login_tokens")),
    )


def downgrade() -> None:
    op.drop_table("login_tokens")
    op.drop_index(op.f("ix_refresh_tokens_next_token_sha256"), table_name="refresh_tokens")
    op.drop_index(op.f("ix_refresh_tokens_user_id"), table_name="refresh_tokens")
    op.drop_table("refresh_tokens")
    op.drop_index(op.f("ix_access_tokens_refresh_token_sha256"), table_name="access_tokens")
    # Plain ALTER TABLE ... DROP COLUMN (SQLite 3.35 and later): batch mode would copy the
    # table and drop the old one, which SQLite refuses for users (other tables' foreign keys
    # point at it).
    for table, column in (
        ("access_tokens", "used"),
        ("access_tokens", "refresh_token_sha256"),
        ("access_tokens", "valid_until_ms"),
        ("users", "suspended"),
        ("users", "locked"),
    ):
        op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
