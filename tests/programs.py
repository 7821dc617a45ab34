"""Programme texts and event bodies shared by test modules."""

from typing import Any

# A small shop: 1 point per CNY pending for 14 days, a tea bonus, a capped review
# reward. SHORTFALL is replaced by the refund policy under test.
SHOP = """
program: test-shop
currency: CNY
point_value: "0.01"
timezone: Asia/Shanghai
expiry: { policy: rolling_months, months: 12 }
refunds: { shortfall: SHORTFALL }
rules:
  - id: base
    on: purchase
    priority: 100
    reason: "1 point per CNY"
    award: { per_amount: "1.00", points: 1, rounding: floor }
    pending_days: 14
  - id: tea-bonus
    on: purchase
    priority: 90
    reason: "tea bonus"
    items: { category: tea }
    award: { fixed: 10 }
  - id: review
    on: custom
    event: review
    reason: "Thanks for your review"
    award: { fixed: 20 }
    limits: [{ max_times: 1, period: day }]
"""


def purchase(order: str, total: str = "100.00", member: str = "M1", **extra: Any) -> Any:
    """A purchase event body at the test clock's morning (2026-06-15)."""
    return {
        "type": "purchase",
        "member_id": member,
        "order_id": order,
        "total": total,
        "currency": "CNY",
        "occurred_at": "2026-06-15T09:00:00Z",
    } | extra
