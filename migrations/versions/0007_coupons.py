"""Coupons issued by one-step redemptions in the app.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 12:15:45.879487
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


BIGINT_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "coupons",
        sa.Column("id", BIGINT_ID, sa.Identity(always=False), nullable=False),
        sa.Column("code", sa.String(length=24), nullable=False),
        sa.Column("member_id", BIGINT_ID, nullable=False),
        sa.Column("reward_id", sa.String(length=100), nullable=False),
        sa.Column("redemption_id", BIGINT_ID, nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("fulfilment", sa.String(length=12), nullable=True),
        sa.Column("issued_at", UTC_TIME, nullable=False),
        sa.Column("expires_at", UTC_TIME, nullable=False),
        sa.Column("used_at", UTC_TIME, nullable=True),
        sa.Column("used_store", sa.String(length=100), nullable=True),
        sa.Column("used_order", sa.String(length=100), nullable=True),
        sa.CheckConstraint(
            "status IN ('issued', 'used', 'cancelled')", name=op.f("ck_coupons_status")
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_coupons_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["redemption_id"], ["redemptions.id"], name=op.f("fk_coupons_redemption_id_redemptions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coupons")),
        sa.UniqueConstraint("code", name=op.f("uq_coupons_code")),
    )
    with op.batch_alter_table("coupons", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_coupons_member_id"), ["member_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("coupons", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_coupons_member_id"))

    op.drop_table("coupons")
