"""Tiers: tier state on members, tier history, notifications outbox, order dates.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 11:59:12.245589
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


BIGINT_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
UTC_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "notifications",
        sa.Column("id", BIGINT_ID, sa.Identity(always=False), nullable=False),
        sa.Column("member_id", BIGINT_ID, nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_notifications_member_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
    )
    op.create_table(
        "tier_changes",
        sa.Column("id", BIGINT_ID, sa.Identity(always=False), nullable=False),
        sa.Column("member_id", BIGINT_ID, nullable=False),
        sa.Column("from_tier", sa.String(length=50), nullable=True),
        sa.Column("to_tier", sa.String(length=50), nullable=True),
        sa.Column("reason", sa.String(length=20), nullable=False),
        sa.Column("event_id", BIGINT_ID, nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("at", UTC_TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_tier_changes_member_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tier_changes")),
    )
    with op.batch_alter_table("tier_changes", schema=None) as batch_op:
        batch_op.create_index("ix_tier_changes_member_id_id", ["member_id", "id"], unique=False)

    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tier", sa.String(length=50), nullable=True))
        batch_op.add_column(sa.Column("tier_since", UTC_TIME, nullable=True))
        batch_op.add_column(sa.Column("tier_valid_until", UTC_TIME, nullable=True))
        batch_op.add_column(
            sa.Column("tier_grace", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(sa.Column("manual_tier", sa.String(length=50), nullable=True))
        batch_op.add_column(sa.Column("manual_tier_until", UTC_TIME, nullable=True))
        batch_op.create_index(
            batch_op.f("ix_members_manual_tier_until"), ["manual_tier_until"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_members_tier_valid_until"), ["tier_valid_until"], unique=False
        )

    # Orders posted before this revision get the time they were recorded.
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("occurred_at", UTC_TIME, nullable=True))
    op.execute("UPDATE orders SET occurred_at = created_at")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.alter_column("occurred_at", existing_type=UTC_TIME, nullable=False)
        batch_op.create_index(
            "ix_orders_member_id_occurred_at", ["member_id", "occurred_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_member_id_occurred_at")
        batch_op.drop_column("occurred_at")

    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_members_tier_valid_until"))
        batch_op.drop_index(batch_op.f("ix_members_manual_tier_until"))
        batch_op.drop_column("manual_tier_until")
        batch_op.drop_column("manual_tier")
        batch_op.drop_column("tier_grace")
        batch_op.drop_column("tier_valid_until")
        batch_op.drop_column("tier_since")
        batch_op.drop_column("tier")

    with op.batch_alter_table("tier_changes", schema=None) as batch_op:
        batch_op.drop_index("ix_tier_changes_member_id_id")

    op.drop_table("tier_changes")
    op.drop_table("notifications")
