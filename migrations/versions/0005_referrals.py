"""Referrals: who referred whom, and each referral's state.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 12:07:08.600692
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


BIGINT_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "referrals",
        sa.Column("id", BIGINT_ID, sa.Identity(always=False), nullable=False),
        sa.Column("referrer_id", BIGINT_ID, nullable=False),
        sa.Column("referee_id", BIGINT_ID, nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=True),
        sa.Column("order_ref", BIGINT_ID, nullable=True),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("qualified_at", UTC_TIME, nullable=True),
        sa.Column("rewarded_at", UTC_TIME, nullable=True),
        sa.CheckConstraint(
            "state IN ('pending', 'qualified', 'rewarded', 'rejected')",
            name=op.f("ck_referrals_state"),
        ),
        sa.ForeignKeyConstraint(
            ["referee_id"], ["members.id"], name=op.f("fk_referrals_referee_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["referrer_id"], ["members.id"], name=op.f("fk_referrals_referrer_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referrals")),
        sa.UniqueConstraint("referee_id", name=op.f("uq_referrals_referee_id")),
    )
    with op.batch_alter_table("referrals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_referrals_order_ref"), ["order_ref"], unique=False)
        batch_op.create_index(batch_op.f("ix_referrals_referrer_id"), ["referrer_id"], unique=False)

    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.add_column(sa.Column("referred_by", BIGINT_ID, nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_members_referred_by_members"), "members", ["referred_by"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_members_referred_by_members"), type_="foreignkey")
        batch_op.drop_column("referred_by")

    with op.batch_alter_table("referrals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_referrals_referrer_id"))
        batch_op.drop_index(batch_op.f("ix_referrals_order_ref"))

    op.drop_table("referrals")
