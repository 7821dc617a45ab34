"""Ledger: events, transactions, entries, lots, balances, orders, rule usage.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 11:38:56.124285
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


BIGINT_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
UTC_TIME = sa.DateTime(timezone=True)
# Exact decimals: NUMERIC on PostgreSQL, text on SQLite (no exact decimal type there).
MONEY = sa.String(40).with_variant(sa.Numeric(18, 4), "postgresql")


def upgrade() -> None:
    op.create_table(
        "balances",
        sa.Column("member_id", BIGINT_ID, nullable=False),
        sa.Column("available", sa.BigInteger(), nullable=False),
        sa.Column("pending", sa.BigInteger(), nullable=False),
        sa.Column("held", sa.BigInteger(), nullable=False),
        sa.Column("lifetime_earned", sa.BigInteger(), nullable=False),
        sa.Column("lifetime_redeemed", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", UTC_TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_balances_member_id_members")
        ),
        sa.PrimaryKeyConstraint("member_id", name=op.f("pk_balances")),
    )
    op.create_table(
        "events",
        sa.Column("id", BIGINT_ID, sa.Identity(always=False), nullable=False),
        sa.Column("source_key_id", BIGINT_ID, nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("member_id", BIGINT_ID, nullable=True),
        sa.Column("order_id", sa.String(length=100), nullable=True),
        sa.Column("occurred_at", UTC_TIME, nullable=True),
        sa.Column("recorded_at", UTC_TIME, nullable=False),
        sa.Column("program_version", BIGINT_ID, nullable=True),
        sa.Column(
            "payload",
            JSON,
            nullable=False,
        ),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column(
            "response",
            JSON,
            nullable=True,
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_events_member_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
        sa.UniqueConstraint(
            "source_key_id", "idempotency_key", name=op.f("uq_events_source_key_id_idempotency_key")
        ),
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index("ix_events_recorded_at", ["recorded_at"], unique=False)

    op.create_table(
        "rule_usage",
        sa.Column("id", BIGINT_ID, sa.Identity(always=False), nullable=False),
        sa.Column("member_id", BIGINT_ID, nullable=False),
        sa.Column("rule_id", sa.String(length=100), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("at", UTC_TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_rule_usage_member_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rule_usage")),
    )
    with op.batch_alter_table("rule_usage", schema=None) as batch_op:
        batch_op.create_index(
            "ix_rule_usage_member_id_rule_id_at", ["member_id", "rule_id", "at"], unique=False
        )
        batch_op.create_index("ix_rule_usage_rule_id_at", ["rule_id", "at"], unique=False)

    op.create_table(
        "ledger_transactions",
        sa.Column("id", BIGINT_ID, sa.Identity(always=False), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("member_id", BIGINT_ID, nullable=True),
        sa.Column("event_id", BIGINT_ID, nullable=True),
        sa.Column("program_version", BIGINT_ID, nullable=True),
        sa.Column("actor", sa.String(length=120), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("shortfall", sa.Integer(), nullable=False),
        sa.Column("at", UTC_TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name=op.f("fk_ledger_transactions_event_id_events")
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_ledger_transactions_member_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_transactions")),
    )
    with op.batch_alter_table("ledger_transactions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_ledger_transactions_member_id_id", ["member_id", "id"], unique=False
        )

    op.create_table(
        "orders",
        sa.Column("id", BIGINT_ID, sa.Identity(always=False), nullable=False),
        sa.Column("member_id", BIGINT_ID, nullable=False),
        sa.Column("order_id", sa.String(length=100), nullable=False),
        sa.Column("event_id", BIGINT_ID, nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("total", MONEY, nullable=False),
        sa.Column("refunded", MONEY, nullable=False),
        sa.Column(
            "items",
            JSON,
            nullable=False,
        ),
        sa.Column(
            "refunded_items",
            JSON,
            nullable=False,
        ),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("clawed", sa.BigInteger(), nullable=False),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name=op.f("fk_orders_event_id_events")
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_orders_member_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
        sa.UniqueConstraint("member_id", "order_id", name=op.f("uq_orders_member_id_order_id")),
    )
    op.create_table(
        "ledger_entries",
        sa.Column("id", BIGINT_ID, sa.Identity(always=False), nullable=False),
        sa.Column("txn_id", BIGINT_ID, nullable=False),
        sa.Column("member_id", BIGINT_ID, nullable=True),
        sa.Column("account", sa.String(length=20), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("lot_id", BIGINT_ID, nullable=True),
        sa.Column("rule_id", sa.String(length=100), nullable=True),
        sa.Column("reason", sa.String(length=200), nullable=True),
        sa.Column("at", UTC_TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_ledger_entries_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["txn_id"],
            ["ledger_transactions.id"],
            name=op.f("fk_ledger_entries_txn_id_ledger_transactions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_entries")),
    )
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.create_index("ix_ledger_entries_member_id_at", ["member_id", "at"], unique=False)
        batch_op.create_index(batch_op.f("ix_ledger_entries_txn_id"), ["txn_id"], unique=False)

    op.create_table(
        "lots",
        sa.Column("id", BIGINT_ID, sa.Identity(always=False), nullable=False),
        sa.Column("member_id", BIGINT_ID, nullable=False),
        sa.Column("txn_id", BIGINT_ID, nullable=False),
        sa.Column("order_ref", BIGINT_ID, nullable=True),
        sa.Column("rule_id", sa.String(length=100), nullable=True),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("remaining", sa.BigInteger(), nullable=False),
        sa.Column("clawed", sa.BigInteger(), nullable=False),
        sa.Column("vests_at", UTC_TIME, nullable=True),
        sa.Column("expires_at", UTC_TIME, nullable=True),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'available', 'expired')", name=op.f("ck_lots_status")
        ),
        sa.CheckConstraint("remaining >= 0 AND clawed >= 0", name=op.f("ck_lots_amounts")),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_lots_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["txn_id"], ["ledger_transactions.id"], name=op.f("fk_lots_txn_id_ledger_transactions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lots")),
    )
    with op.batch_alter_table("lots", schema=None) as batch_op:
        batch_op.create_index("ix_lots_member_id_status", ["member_id", "status"], unique=False)
        batch_op.create_index("ix_lots_order_ref", ["order_ref"], unique=False)
        batch_op.create_index("ix_lots_status_expires_at", ["status", "expires_at"], unique=False)
        batch_op.create_index("ix_lots_status_vests_at", ["status", "vests_at"], unique=False)

    op.execute(
        "INSERT INTO balances (member_id, available, pending, held, lifetime_earned, "
        "lifetime_redeemed, version, updated_at) "
        "SELECT id, 0, 0, 0, 0, 0, 0, created_at FROM members"
    )
    if op.get_bind().dialect.name == "postgresql":
        # The ledger is append-only: the database itself refuses to change history.
        op.execute(APPEND_ONLY_FUNCTION)
        for table in ("ledger_entries", "ledger_transactions"):
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION loyalty_append_only()"
            )


APPEND_ONLY_FUNCTION = """
CREATE FUNCTION loyalty_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the ledger is append-only: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END
$$
"""


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in ("ledger_entries", "ledger_transactions"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        op.execute("DROP FUNCTION IF EXISTS loyalty_append_only()")
    with op.batch_alter_table("lots", schema=None) as batch_op:
        batch_op.drop_index("ix_lots_status_vests_at")
        batch_op.drop_index("ix_lots_status_expires_at")
        batch_op.drop_index("ix_lots_order_ref")
        batch_op.drop_index("ix_lots_member_id_status")

    op.drop_table("lots")
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ledger_entries_txn_id"))
        batch_op.drop_index("ix_ledger_entries_member_id_at")

    op.drop_table("ledger_entries")
    op.drop_table("orders")
    with op.batch_alter_table("ledger_transactions", schema=None) as batch_op:
        batch_op.drop_index("ix_ledger_transactions_member_id_id")

    op.drop_table("ledger_transactions")
    with op.batch_alter_table("rule_usage", schema=None) as batch_op:
        batch_op.drop_index("ix_rule_usage_rule_id_at")
        batch_op.drop_index("ix_rule_usage_member_id_rule_id_at")

    op.drop_table("rule_usage")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index("ix_events_recorded_at")

    op.drop_table("events")
    op.drop_table("balances")
