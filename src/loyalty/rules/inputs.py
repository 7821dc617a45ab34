"""What the engine is asked to judge: an event and the member it belongs to.

These are plain frozen values so callers (HTTP, CLI, ledger, programme tests) can build
them from any source; lifecycle fields arrive later as additional optional fields.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

import msgspec

# Inputs must say which moment they mean: a time without an offset is refused when
# decoded (422 naming the field), never guessed.
AwareDatetime = Annotated[datetime, msgspec.Meta(tz=True)]

EventType = Literal["purchase", "refund", "signup", "referral", "custom"]


class LineItem(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    sku: str
    quantity: int = 1
    unit_price: Decimal = Decimal(0)
    discount: Decimal = Decimal(0)
    category: str | None = None
    brand: str | None = None

    @property
    def amount(self) -> Decimal:
        """Net line amount, what the customer actually paid for this line."""
        return self.unit_price * self.quantity - self.discount


class EventInput(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    type: EventType
    occurred_at: AwareDatetime
    name: str | None = None
    order_id: str | None = None
    store_id: str | None = None
    channel: str | None = None
    currency: str | None = None
    total: Decimal | None = None
    payment_method: str | None = None
    items: tuple[LineItem, ...] = ()
    attributes: dict[str, Any] = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.occurred_at.tzinfo is None:
            raise ValueError("occurred_at must be timezone-aware")

    @property
    def amount(self) -> Decimal:
        """The event's spend: the declared total, else the sum of its lines."""
        if self.total is not None:
            return self.total
        return sum((item.amount for item in self.items), Decimal(0))


class MemberInput(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    member_id: str
    tier: str | None = None
    tags: frozenset[str] = frozenset()
    attributes: dict[str, Any] = msgspec.field(default_factory=dict)
    joined_at: AwareDatetime | None = None
    birthday: date | None = None
    timezone: str | None = None
