"""Tables, as SQLAlchemy Core metadata. The migrations in migrations/ must match this."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

from loyalty.db.types import BigIntId, Json, Money, UtcDateTime

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
    # The tier the member's figures earned, until its next review; a marketer's
    # manual tier wins while it lasts and then simply stops applying.
    Column("tier", String(50), nullable=True),
    Column("tier_since", UtcDateTime(), nullable=True),
    Column("tier_valid_until", UtcDateTime(), nullable=True, index=True),
    Column("tier_grace", Boolean(), nullable=False, server_default=false()),
    Column("manual_tier", String(50), nullable=True),
    Column("manual_tier_until", UtcDateTime(), nullable=True, index=True),
    Column("referred_by", BigIntId, ForeignKey("members.id"), nullable=True),
    # Do-not-contact hours, local time: "22:00-08:00".
    Column("quiet_hours", String(11), nullable=True),
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

# Ledger. Account names: a member's `available`, `pending` and `held`; house accounts
# `issued`, `clawed_back`, `expired`, `adjusted`, `redeemed` (member_id NULL). Every
# transaction's entries sum to zero; entries are never updated or deleted.

# One row per accepted request that a client may retry: the key space is per API key.
events = Table(
    "events",
    metadata,
    Column("id", BigIntId, Identity(), primary_key=True),
    Column("source_key_id", BigIntId, nullable=False),
    Column("idempotency_key", String(200), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("member_id", BigIntId, ForeignKey("members.id"), nullable=True),
    Column("order_id", String(100), nullable=True),
    Column("occurred_at", UtcDateTime(), nullable=True),
    Column("recorded_at", UtcDateTime(), nullable=False),
    Column("program_version", BigIntId, nullable=True),
    Column("payload", Json, nullable=False),
    Column("status_code", Integer(), nullable=True),
    Column("response", Json, nullable=True),
    UniqueConstraint("source_key_id", "idempotency_key"),
)
Index("ix_events_recorded_at", events.c.recorded_at)

ledger_transactions = Table(
    "ledger_transactions",
    metadata,
    Column("id", BigIntId, Identity(), primary_key=True),
    Column("kind", String(20), nullable=False),
    # NULL for batch jobs (vesting, expiry) whose entries name their members.
    Column("member_id", BigIntId, ForeignKey("members.id"), nullable=True),
    Column("event_id", BigIntId, ForeignKey("events.id"), nullable=True),
    Column("program_version", BigIntId, nullable=True),
    Column("actor", String(120), nullable=False),
    Column("reason", String(200), nullable=False),
    Column("note", Text(), nullable=True),
    Column("shortfall", Integer(), nullable=False),
    Column("at", UtcDateTime(), nullable=False),
)
Index(
    "ix_ledger_transactions_member_id_id", ledger_transactions.c.member_id, ledger_transactions.c.id
)

ledger_entries = Table(
    "ledger_entries",
    metadata,
    Column("id", BigIntId, Identity(), primary_key=True),
    Column("txn_id", BigIntId, ForeignKey("ledger_transactions.id"), nullable=False, index=True),
    Column("member_id", BigIntId, ForeignKey("members.id"), nullable=True),
    Column("account", String(20), nullable=False),
    Column("amount", BigInteger(), nullable=False),
    Column("lot_id", BigIntId, nullable=True),
    Column("rule_id", String(100), nullable=True),
    Column("reason", String(200), nullable=True),
    Column("at", UtcDateTime(), nullable=False),
)
Index("ix_ledger_entries_member_id_at", ledger_entries.c.member_id, ledger_entries.c.at)

# A lot is one credit of points with its own vesting and expiry. `remaining` is what
# is left to spend; debits consume lots soonest-expiring first and name each lot.
lots = Table(
    "lots",
    metadata,
    Column("id", BigIntId, Identity(), primary_key=True),
    Column("member_id", BigIntId, ForeignKey("members.id"), nullable=False),
    Column("txn_id", BigIntId, ForeignKey("ledger_transactions.id"), nullable=False),
    Column("order_ref", BigIntId, nullable=True),
    Column("rule_id", String(100), nullable=True),
    Column("status", String(12), nullable=False),
    Column("points", BigInteger(), nullable=False),
    Column("remaining", BigInteger(), nullable=False),
    Column("clawed", BigInteger(), nullable=False),
    Column("vests_at", UtcDateTime(), nullable=True),
    Column("expires_at", UtcDateTime(), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    CheckConstraint("remaining >= 0 AND clawed >= 0", name="amounts"),
    CheckConstraint("status IN ('pending', 'available', 'expired')", name="status"),
)
Index("ix_lots_member_id_status", lots.c.member_id, lots.c.status)
Index("ix_lots_order_ref", lots.c.order_ref)
Index("ix_lots_status_vests_at", lots.c.status, lots.c.vests_at)
Index("ix_lots_status_expires_at", lots.c.status, lots.c.expires_at)

# Stored balances, one row per member, updated with the entries in one transaction.
balances = Table(
    "balances",
    metadata,
    Column("member_id", BigIntId, ForeignKey("members.id"), primary_key=True),
    Column("available", BigInteger(), nullable=False),
    Column("pending", BigInteger(), nullable=False),
    Column("held", BigInteger(), nullable=False),
    Column("lifetime_earned", BigInteger(), nullable=False),
    Column("lifetime_redeemed", BigInteger(), nullable=False),
    Column("version", BigInteger(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)

# A purchase, so that refunds can be checked against it and claw back its points.
orders = Table(
    "orders",
    metadata,
    Column("id", BigIntId, Identity(), primary_key=True),
    Column("member_id", BigIntId, ForeignKey("members.id"), nullable=False),
    Column("order_id", String(100), nullable=False),
    Column("event_id", BigIntId, ForeignKey("events.id"), nullable=False),
    Column("currency", String(3), nullable=True),
    Column("total", Money(), nullable=False),
    Column("refunded", Money(), nullable=False),
    Column("items", Json, nullable=False),
    Column("refunded_items", Json, nullable=False),
    Column("points", BigInteger(), nullable=False),
    Column("clawed", BigInteger(), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("occurred_at", UtcDateTime(), nullable=False),
    # The points-as-payment redemption that paid for (part of) the order, if any.
    Column("redemption_id", BigIntId, ForeignKey("redemptions.id"), nullable=True, unique=True),
    UniqueConstraint("member_id", "order_id"),
)
Index("ix_orders_member_id_occurred_at", orders.c.member_id, orders.c.occurred_at)

# What each rule has given, for caps and budgets: read by window, never scanned whole.
rule_usage = Table(
    "rule_usage",
    metadata,
    Column("id", BigIntId, Identity(), primary_key=True),
    Column("member_id", BigIntId, ForeignKey("members.id"), nullable=False),
    Column("rule_id", String(100), nullable=False),
    Column("points", BigInteger(), nullable=False),
    Column("at", UtcDateTime(), nullable=False),
)
Index(
    "ix_rule_usage_member_id_rule_id_at",
    rule_usage.c.member_id,
    rule_usage.c.rule_id,
    rule_usage.c.at,
)
Index("ix_rule_usage_rule_id_at", rule_usage.c.rule_id, rule_usage.c.at)

tier_changes = Table(
    "tier_changes",
    metadata,
    Column("id", BigIntId, Identity(), primary_key=True),
    Column("member_id", BigIntId, ForeignKey("members.id"), nullable=False),
    Column("from_tier", String(50), nullable=True),
    Column("to_tier", String(50), nullable=True),
    # event (an upgrade), review, grace, manual, manual_ended
    Column("reason", String(20), nullable=False),
    Column("event_id", BigIntId, nullable=True),
    Column("note", Text(), nullable=True),
    Column("at", UtcDateTime(), nullable=False),
)
Index("ix_tier_changes_member_id_id", tier_changes.c.member_id, tier_changes.c.id)

# Outbox of notices for the brand's messaging system (tier_changed, ...): written in
# the same transaction as the change it announces, read as a cursor feed.
notifications = Table(
    "notifications",
    metadata,
    Column("id", BigIntId, Identity(), primary_key=True),
    Column("member_id", BigIntId, ForeignKey("members.id"), nullable=False),
    Column("kind", String(40), nullable=False),
    Column("payload", Json, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
)

# A referral: pending until the referee's qualifying purchase, then rewarded (both
# sides' points pending until that purchase vests), or rejected with its reason.
referrals = Table(
    "referrals",
    metadata,
    Column("id", BigIntId, Identity(), primary_key=True),
    Column("referrer_id", BigIntId, ForeignKey("members.id"), nullable=False, index=True),
    # A member can be referred once, when they join.
    Column("referee_id", BigIntId, ForeignKey("members.id"), nullable=False, unique=True),
    Column("state", String(12), nullable=False),
    Column("reason", String(200), nullable=True),
    Column("order_ref", BigIntId, nullable=True, index=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("qualified_at", UtcDateTime(), nullable=True),
    Column("rewarded_at", UtcDateTime(), nullable=True),
    CheckConstraint("state IN ('pending', 'qualified', 'rewarded', 'rejected')", name="state"),
)

# A redemption: a hold on points (points as payment, or a catalog reward) that is
# committed (fully or in part) or cancelled once, or released when it times out.
redemptions = Table(
    "redemptions",
    metadata,
    Column("id", BigIntId, Identity(), primary_key=True),
    Column("member_id", BigIntId, ForeignKey("members.id"), nullable=False, index=True),
    Column("source_key_id", BigIntId, nullable=False),
    Column("idempotency_key", String(200), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("reward_id", String(100), nullable=True),
    Column("points", BigInteger(), nullable=False),
    Column("committed_points", BigInteger(), nullable=True),
    Column("state", String(12), nullable=False),
    Column("hold_txn_id", BigIntId, ForeignKey("ledger_transactions.id"), nullable=False),
    Column("commit_txn_id", BigIntId, ForeignKey("ledger_transactions.id"), nullable=True),
    # Points given back because the purchase they paid for was refunded.
    Column("restored_points", BigInteger(), nullable=False, server_default="0"),
    Column("expires_at", UtcDateTime(), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("resolved_at", UtcDateTime(), nullable=True),
    UniqueConstraint("source_key_id", "idempotency_key"),
    CheckConstraint("state IN ('held', 'committed', 'cancelled', 'expired')", name="state"),
)
Index("ix_redemptions_state_expires_at", redemptions.c.state, redemptions.c.expires_at)

# Units of a reward given out so far: one row per reward, so only redemptions of that
# reward contend for it (never every redemption).
reward_stock = Table(
    "reward_stock",
    metadata,
    Column("reward_id", String(100), primary_key=True),
    Column("used", BigInteger(), nullable=False),
)

# A coupon issued by a one-step redemption in the app; used at most once.
coupons = Table(
    "coupons",
    metadata,
    Column("id", BigIntId, Identity(), primary_key=True),
    Column("code", String(24), nullable=False, unique=True),
    Column("member_id", BigIntId, ForeignKey("members.id"), nullable=False, index=True),
    Column("reward_id", String(100), nullable=False),
    # What issued it: a redemption (points spent), or a referral (a reward for it).
    Column("redemption_id", BigIntId, ForeignKey("redemptions.id"), nullable=True),
    Column("referral_id", BigIntId, ForeignKey("referrals.id"), nullable=True, index=True),
    Column("status", String(12), nullable=False),
    # Physical gifts: ordered, shipped, delivered, cancelled.
    Column("fulfilment", String(12), nullable=True),
    Column("issued_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
    Column("used_at", UtcDateTime(), nullable=True),
    Column("used_store", String(100), nullable=True),
    Column("used_order", String(100), nullable=True),
    CheckConstraint("status IN ('issued', 'used', 'cancelled')", name="status"),
)

# Scheduled gifts (birthday, holiday, anniversary): one row per member, campaign and
# occurrence ("birthday:2026", "spring-festival:2027"). The unique key is what makes a
# grant exactly-once however often, and on however many instances, a job runs.
grants = Table(
    "grants",
    metadata,
    Column("id", BigIntId, Identity(), primary_key=True),
    Column("member_id", BigIntId, ForeignKey("members.id"), nullable=False),
    Column("campaign", String(100), nullable=False),
    Column("occurrence", String(120), nullable=False),
    Column("points", BigInteger(), nullable=False),
    Column("txn_id", BigIntId, ForeignKey("ledger_transactions.id"), nullable=True),
    Column("due_at", UtcDateTime(), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    UniqueConstraint("member_id", "campaign", "occurrence"),
)

# A points_expiring notice was written for this lot: at most one per lot.
expiry_warnings = Table(
    "expiry_warnings",
    metadata,
    Column("lot_id", BigIntId, ForeignKey("lots.id"), primary_key=True),
    Column("member_id", BigIntId, ForeignKey("members.id"), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
)

# One row per scheduler job run: when, where, what it did, or why it failed.
job_runs = Table(
    "job_runs",
    metadata,
    Column("id", BigIntId, Identity(), primary_key=True),
    Column("job", String(40), nullable=False),
    Column("instance", String(120), nullable=False),
    Column("status", String(12), nullable=False),
    Column("started_at", UtcDateTime(), nullable=False),
    Column("finished_at", UtcDateTime(), nullable=True),
    Column("counts", Json, nullable=False),
    Column("error", Text(), nullable=True),
    CheckConstraint("status IN ('running', 'ok', 'failed')", name="status"),
)
Index("ix_job_runs_job_id", job_runs.c.job, job_runs.c.id)
