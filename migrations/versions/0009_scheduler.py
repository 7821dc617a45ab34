"""Scheduler: exactly-once grants, expiry warnings per lot, and the job run log.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23 12:30:28.242829
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


BIGINT_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
UTC_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "job_runs",
        sa.Column("id", BIGINT_ID, sa.Identity(always=False), nullable=False),
        sa.Column("job", sa.String(length=40), nullable=False),
        sa.Column("instance", sa.String(length=120), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("started_at", UTC_TIME, nullable=False),
        sa.Column("finished_at", UTC_TIME, nullable=True),
        sa.Column("counts", JSON, nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "status IN ('running', 'ok', 'failed')", name=op.f("ck_job_runs_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_runs")),
    )
    with op.batch_alter_table("job_runs", schema=None) as batch_op:
        batch_op.create_index("ix_job_runs_job_id", ["job", "id"], unique=False)

    op.create_table(
        "grants",
        sa.Column("id", BIGINT_ID, sa.Identity(always=False), nullable=False),
        sa.Column("member_id", BIGINT_ID, nullable=False),
        sa.Column("campaign", sa.String(length=100), nullable=False),
        sa.Column("occurrence", sa.String(length=120), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("txn_id", BIGINT_ID, nullable=True),
        sa.Column("due_at", UTC_TIME, nullable=False),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_grants_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["txn_id"],
            ["ledger_transactions.id"],
            name=op.f("fk_grants_txn_id_ledger_transactions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_grants")),
        sa.UniqueConstraint(
            "member_id",
            "campaign",
            "occurrence",
            name=op.f("uq_grants_member_id_campaign_occurrence"),
        ),
    )
    op.create_table(
        "expiry_warnings",
        sa.Column("lot_id", BIGINT_ID, nullable=False),
        sa.Column("member_id", BIGINT_ID, nullable=False),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["lot_id"], ["lots.id"], name=op.f("fk_expiry_warnings_lot_id_lots")
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_expiry_warnings_member_id_members")
        ),
        sa.PrimaryKeyConstraint("lot_id", name=op.f("pk_expiry_warnings")),
    )


def downgrade() -> None:
    op.drop_table("expiry_warnings")
    op.drop_table("grants")
    with op.batch_alter_table("job_runs", schema=None) as batch_op:
        batch_op.drop_index("ix_job_runs_job_id")
    op.drop_table("job_runs")
