"""Small builders so each test states only what it is about."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from loyalty.rules import EventInput, LineItem, MemberInput, Program, compile_source

HEADER = """\
program: test-programme
currency: CNY
point_value: "0.01"
timezone: Asia/Shanghai
stores:
  sh-1: { timezone: Asia/Shanghai }
  la-1: { timezone: America/Los_Angeles }
custom_dates:
  singles-day: "11-11"
tiers: [{ id: member }, { id: silver }, { id: gold }, { id: black }]
"""

# Wednesday 12 March 2025, 12:00 in Shanghai: no weekend, no holiday.
WEDNESDAY = datetime(2025, 3, 12, 4, 0, tzinfo=UTC)


def programme(rules: str, extra: str = "") -> Program:
    """Compile rules (YAML list items, any indentation) under a standard header."""
    text = (
        HEADER + textwrap.dedent(extra) + "rules:\n" + textwrap.indent(textwrap.dedent(rules), "  ")
    )
    return compile_source(text, "program.yaml")


def purchase(
    total: str | None = "100.00",
    at: datetime = WEDNESDAY,
    items: tuple[LineItem, ...] = (),
    **fields: Any,
) -> EventInput:
    return EventInput(
        type="purchase",
        occurred_at=at,
        total=Decimal(total) if total is not None else None,
        currency="CNY",
        items=items,
        **fields,
    )


def item(category: str, price: str, quantity: int = 1, **fields: Any) -> LineItem:
    if "discount" in fields:
        fields["discount"] = Decimal(fields["discount"])
    return LineItem(
        sku=fields.pop("sku", f"{category}-sku"),
        category=category,
        quantity=quantity,
        unit_price=Decimal(price),
        **fields,
    )


def member(tier: str | None = "member", **fields: Any) -> MemberInput:
    return MemberInput(member_id=fields.pop("member_id", "m-1"), tier=tier, **fields)
