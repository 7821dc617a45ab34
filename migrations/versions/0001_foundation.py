"""Foundation: API keys and members.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BIGINT_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
UTC_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", BIGINT_ID, sa.Identity(), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("revoked_at", UTC_TIME, nullable=True),
        sa.CheckConstraint("role IN ('pos', 'app', 'marketer', 'admin')", name="ck_api_keys_role"),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        sa.UniqueConstraint("key_hash", name="uq_api_keys_key_hash"),
    )
    op.create_table(
        "members",
        sa.Column("id", BIGINT_ID, sa.Identity(), primary_key=True),
        sa.Column("member_id", sa.String(64), nullable=False),
        sa.Column("referral_code", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column("phone", sa.String(20), nullable=True),
        sa.Column("birthday", sa.Date(), nullable=True),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("locale", sa.String(35), nullable=True),
        sa.Column("marketing_consent", sa.Boolean(), nullable=False),
        sa.Column("attributes", JSON, nullable=False),
        sa.Column("tags", JSON, nullable=False),
        sa.Column("joined_at", UTC_TIME, nullable=False),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("updated_at", UTC_TIME, nullable=False),
        sa.Column("erased_at", UTC_TIME, nullable=True),
        sa.CheckConstraint("status IN ('active', 'suspended', 'erased')", name="ck_members_status"),
        sa.PrimaryKeyConstraint("id", name="pk_members"),
        sa.UniqueConstraint("member_id", name="uq_members_member_id"),
        sa.UniqueConstraint("referral_code", name="uq_members_referral_code"),
    )
    op.create_index("ix_members_email", "members", ["email"])
    op.create_index("ix_members_phone", "members", ["phone"])


def downgrade() -> None:
    op.drop_table("members")
    op.drop_table("api_keys")
