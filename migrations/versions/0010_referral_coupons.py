"""Coupons issued for referrals as well as for redemptions.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-23 12:42:45.118664
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


BIGINT_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("coupons", schema=None) as batch_op:
        batch_op.add_column(sa.Column("referral_id", BIGINT_ID, nullable=True))
        batch_op.alter_column("redemption_id", existing_type=sa.INTEGER(), nullable=True)
        batch_op.create_index(batch_op.f("ix_coupons_referral_id"), ["referral_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_coupons_referral_id_referrals"), "referrals", ["referral_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("coupons", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_coupons_referral_id_referrals"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_coupons_referral_id"))
        batch_op.alter_column("redemption_id", existing_type=sa.INTEGER(), nullable=False)
        batch_op.drop_column("referral_id")
