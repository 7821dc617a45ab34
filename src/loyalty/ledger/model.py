"""Ledger values at the service boundary: events in, outcomes and balances out."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

import msgspec

from loyalty.members.model import MemberId
from loyalty.rules.inputs import AwareDatetime
from loyalty.tiers.model import TierChange

Text100 = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
# Checked non-negative by the service: msgspec cannot bound a Decimal.
Amount = Decimal


class ItemIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    sku: Text100
    quantity: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 1
    unit_price: Amount = Decimal(0)
    discount: Amount = Decimal(0)
    category: Text100 | None = None
    brand: Text100 | None = None


class EventIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What a till or the app posts. Purchases carry an order; a refund names the
    order it returns, with the returned `items` (sku and quantity) or a `total`."""

    type: Literal["purchase", "refund", "signup", "referral", "custom"]
    member_id: MemberId
    occurred_at: AwareDatetime
    name: Text100 | None = None
    order_id: Text100 | None = None
    store_id: Text100 | None = None
    channel: Text100 | None = None
    currency: Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{3}$")] | None = None
    payment_method: Text100 | None = None
    total: Amount | None = None
    items: Annotated[list[ItemIn], msgspec.Meta(max_length=500)] = msgspec.field(
        default_factory=list
    )
    attributes: Annotated[dict[str, Any], msgspec.Meta(max_length=64)] = msgspec.field(
        default_factory=dict
    )
    # A purchase paid (partly) with points names the committed redemption, so that a
    # refund gives those points back.
    redemption_id: Annotated[int, msgspec.Meta(ge=1, le=2**63 - 1)] | None = None


class AwardOut(msgspec.Struct, frozen=True, kw_only=True):
    rule_id: str
    reason: str
    points: int
    status: Literal["pending", "available"]
    vests_at: datetime | None
    expires_at: datetime | None
    capped: bool = False


class Balances(msgspec.Struct, frozen=True, kw_only=True):
    available: int
    pending: int
    held: int


class EventOutcome(msgspec.Struct, frozen=True, kw_only=True):
    event_id: int
    type: str
    member_id: str
    program_version: int | None
    awards: list[AwardOut]
    points: int
    clawed_back: int = 0
    shortfall: int = 0
    points_restored: int = 0
    balances: Balances
    tier_change: TierChange | None = None


class AdjustmentIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    points: Annotated[int, msgspec.Meta(ge=-10_000_000, le=10_000_000)]
    reason: Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")]
    note: Annotated[str, msgspec.Meta(max_length=2000)] | None = None


class AdjustmentOut(msgspec.Struct, frozen=True, kw_only=True):
    transaction_id: int
    member_id: str
    points: int
    balances: Balances


class PendingVest(msgspec.Struct, frozen=True):
    vests_at: datetime
    points: int


class TierSummary(msgspec.Struct, frozen=True, kw_only=True):
    id: str | None
    name: str | None
    valid_until: datetime | None
    manual: bool


class BalanceView(msgspec.Struct, frozen=True, kw_only=True):
    member_id: str
    tier: TierSummary | None = None
    available: int
    pending: int
    held: int
    lifetime_earned: int
    lifetime_redeemed: int
    pending_vesting: list[PendingVest]
    expiring: dict[str, int]
    as_of: datetime | None = None


class EntryOut(msgspec.Struct, frozen=True, kw_only=True):
    account: str
    amount: int
    lot_id: int | None
    rule_id: str | None
    reason: str | None


class TransactionOut(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    kind: str
    at: datetime
    reason: str
    actor: str
    note: str | None
    event_id: int | None
    program_version: int | None
    shortfall: int
    entries: list[EntryOut]


class LedgerPage(msgspec.Struct, frozen=True):
    items: list[TransactionOut]
    next_cursor: str | None
