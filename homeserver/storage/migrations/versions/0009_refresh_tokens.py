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
    with op.batch_alter_table("users") as batch:
        batch.add_column(
            sa.Column("locked", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(
            sa.Column("suspended", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("access_tokens") as batch:
        batch.add_column(sa.Column("valid_until_ms", sa.BigInteger(), nullable=True))
        batch.add_column(
            sa.Column("refresh_token_sha256", sa.LargeBinary(length=32), nullable=True)
        )
        batch.add_column(sa.Column("used", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.create_index(
            op.f("ix_access_tokens_refresh_token_sha256"), ["refresh_token_sha256"], unique=False
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
    with op.batch_alter_table("access_tokens") as batch:
        batch.drop_index(op.f("ix_access_tokens_refresh_token_sha256"))
        batch.drop_column("used")
        batch.drop_column("refresh_token_sha256")
        batch.drop_column("valid_until_ms")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("suspended")
        batch.drop_column("locked")
