"""Link orders to the redemption that paid for them, so refunds give points back.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23 12:19:58.294933
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


BIGINT_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("redemption_id", BIGINT_ID, nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_orders_redemption_id"), ["redemption_id"])
        batch_op.create_foreign_key(
            batch_op.f("fk_orders_redemption_id_redemptions"),
            "redemptions",
            ["redemption_id"],
            ["id"],
        )

    with op.batch_alter_table("redemptions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("commit_txn_id", BIGINT_ID, nullable=True))
        batch_op.add_column(
            sa.Column("restored_points", sa.BigInteger(), server_default="0", nullable=False)
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_redemptions_commit_txn_id_ledger_transactions"),
            "ledger_transactions",
            ["commit_txn_id"],
            ["id"],
        )


def downgrade() -> None:
    with op.batch_alter_table("redemptions", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_redemptions_commit_txn_id_ledger_transactions"), type_="foreignkey"
        )
        batch_op.drop_column("restored_points")
        batch_op.drop_column("commit_txn_id")

    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_orders_redemption_id_redemptions"), type_="foreignkey"
        )
        batch_op.drop_constraint(batch_op.f("uq_orders_redemption_id"), type_="unique")
        batch_op.drop_column("redemption_id")
