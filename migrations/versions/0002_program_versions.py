"""Published programme versions.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

BIGINT_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
UTC_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "program_versions",
        sa.Column("id", BIGINT_ID, sa.Identity(), primary_key=True),
        sa.Column("program_id", sa.String(100), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("main_file", sa.String(200), nullable=False),
        sa.Column("sources", JSON, nullable=False),
        sa.Column("activates_at", UTC_TIME, nullable=False),
        sa.Column("published_at", UTC_TIME, nullable=False),
        sa.Column("published_by", sa.String(120), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("rollback_of", BIGINT_ID, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_program_versions"),
        sa.ForeignKeyConstraint(
            ["rollback_of"],
            ["program_versions.id"],
            name="fk_program_versions_rollback_of_program_versions",
        ),
    )
    op.create_index("ix_program_versions_activates_at", "program_versions", ["activates_at"])


def downgrade() -> None:
    op.drop_table("program_versions")
