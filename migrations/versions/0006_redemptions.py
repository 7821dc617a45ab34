"""Redemptions (two-phase holds) and per-reward stock.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 12:13:34.153639
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


BIGINT_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "reward_stock",
        sa.Column("reward_id", sa.String(length=100), nullable=False),
        sa.Column("used", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("reward_id", name=op.f("pk_reward_stock")),
    )
    op.create_table(
        "redemptions",
        sa.Column("id", BIGINT_ID, sa.Identity(always=False), nullable=False),
        sa.Column("member_id", BIGINT_ID, nullable=False),
        sa.Column("source_key_id", BIGINT_ID, nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("reward_id", sa.String(length=100), nullable=True),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("committed_points", sa.BigInteger(), nullable=True),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("hold_txn_id", BIGINT_ID, nullable=False),
        sa.Column("expires_at", UTC_TIME, nullable=False),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("resolved_at", UTC_TIME, nullable=True),
        sa.CheckConstraint(
            "state IN ('held', 'committed', 'cancelled', 'expired')",
            name=op.f("ck_redemptions_state"),
        ),
        sa.ForeignKeyConstraint(
            ["hold_txn_id"],
            ["ledger_transactions.id"],
            name=op.f("fk_redemptions_hold_txn_id_ledger_transactions"),
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_redemptions_member_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_redemptions")),
        sa.UniqueConstraint(
            "source_key_id",
            "idempotency_key",
            name=op.f("uq_redemptions_source_key_id_idempotency_key"),
        ),
    )
    with op.batch_alter_table("redemptions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_redemptions_member_id"), ["member_id"], unique=False)
        batch_op.create_index(
            "ix_redemptions_state_expires_at", ["state", "expires_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("redemptions", schema=None) as batch_op:
        batch_op.drop_index("ix_redemptions_state_expires_at")
        batch_op.drop_index(batch_op.f("ix_redemptions_member_id"))

    op.drop_table("redemptions")
    op.drop_table("reward_stock")
