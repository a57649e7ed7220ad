"""presence and OpenID tokens

The latest presence of each user the node knows (local and remote), at the stream
position of its last change, for /sync's ``presence`` section; the OpenID tokens users
request for widgets (hashed, with their expiry).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "presence",
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("status_msg", sa.Text(), nullable=True),
        sa.Column("last_active_ts", sa.BigInteger(), nullable=False),
        sa.Column("currently_active", sa.Boolean(), nullable=False),
        sa.Column("stream_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_presence")),
    )
    op.create_index(op.f("ix_presence_stream_id"), "presence", ["stream_id"], unique=False)
    op.create_table(
        "openid_tokens",
        sa.Column("token_sha256", sa.LargeBinary(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("valid_until_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("token_sha256", name=op.f("pk_openid_tokens")),
    )
    op.create_index(
        op.f("ix_openid_tokens_valid_until_ms"), "openid_tokens", ["valid_until_ms"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_openid_tokens_valid_until_ms"), table_name="openid_tokens")
    op.drop_table("openid_tokens")
    op.drop_index(op.f("ix_presence_stream_id"), table_name="presence")
    op.drop_table("presence")
