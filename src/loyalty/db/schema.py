"""Tables, as SQLAlchemy Core metadata. The migrations in migrations/ must match this."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Date,
    ForeignKey,
    Identity,
    MetaData,
    String,
    Table,
    Text,
)

from loyalty.db.types import BigIntId, Json, UtcDateTime

# Stable constraint names so that migrations can refer to them on both dialects.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", BigIntId, Identity(), primary_key=True),
    Column("name", String(100), nullable=False),
    Column("role", String(20), nullable=False),
    Column("prefix", String(16), nullable=False),
    # SHA-256 of the whole key: the key itself is shown once and never stored.
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("revoked_at", UtcDateTime(), nullable=True),
    CheckConstraint("role IN ('pos', 'app', 'marketer', 'admin')", name="role"),
)

members = Table(
    "members",
    metadata,
    Column("id", BigIntId, Identity(), primary_key=True),
    Column("member_id", String(64), nullable=False, unique=True),
    Column("referral_code", String(16), nullable=False, unique=True),
    Column("status", String(16), nullable=False),
    Column("name", String(200), nullable=True),
    Column("email", String(320), nullable=True, index=True),
    Column("phone", String(20), nullable=True, index=True),
    Column("birthday", Date(), nullable=True),
    Column("timezone", String(64), nullable=False),
    Column("locale", String(35), nullable=True),
    Column("marketing_consent", Boolean(), nullable=False),
    Column("attributes", Json, nullable=False),
    Column("tags", Json, nullable=False),
    Column("joined_at", UtcDateTime(), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("erased_at", UtcDateTime(), nullable=True),
    CheckConstraint("status IN ('active', 'suspended', 'erased')", name="status"),
)

# Published programme versions. Append-only: a rollback publishes an earlier version's
# files again, so the history says what was active when, and who decided it.
program_versions = Table(
    "program_versions",
    metadata,
    Column("id", BigIntId, Identity(), primary_key=True),
    Column("program_id", String(100), nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("main_file", String(200), nullable=False),
    Column("sources", Json, nullable=False),
    Column("activates_at", UtcDateTime(), nullable=False, index=True),
    Column("published_at", UtcDateTime(), nullable=False),
    Column("published_by", String(120), nullable=False),
    Column("note", Text(), nullable=True),
    Column("rollback_of", BigIntId, ForeignKey("program_versions.id"), nullable=True),
)
