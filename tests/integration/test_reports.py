"""The liability report, seeded through the services, on both dialects."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx

from loyalty.auth.keys import Principal, Role
from loyalty.bootstrap import Container
from loyalty.clock import FixedClock
from loyalty.ledger.audit import verify
from loyalty.ledger.model import AdjustmentIn, EventIn
from loyalty.members.model import NewMember
from tests.conftest import NOW

PROGRAM = """
program: report-shop
currency: CURRENCY
point_value: "POINT_VALUE"
timezone: UTC
expiry: EXPIRY
refunds: { shortfall: negative_balance }
rules:
  - id: base
    on: purchase
    priority: 100
    reason: "1 point per unit spent"
    award: { per_amount: "1.00", points: 1, rounding: floor }
    pending_days: 7
  - id: review
    on: custom
    event: review
    reason: "Thanks for your review"
    award: { fixed: 20 }
  - id: survey
    on: custom
    event: survey
    reason: "Thanks for the survey"
    award: { fixed: 50 }
    expires_after_days: 47
"""
# The first version never expires points; the second (active when reported) does, and
# values a point differently: the report must use the active one.
V1 = (
    PROGRAM.replace("CURRENCY", "CNY")
    .replace("POINT_VALUE", "0.01")
    .replace("EXPIRY", "{ policy: never }")
)
V2 = (
    PROGRAM.replace("CURRENCY", "EUR")
    .replace("POINT_VALUE", "0.05")
    .replace("EXPIRY", "{ policy: rolling_months, months: 2 }")
)
# 47 days after this is 2026-07-31 23:30 UTC: July in UTC, August in Asia/Shanghai.
LATE_EVENING = datetime.fromisoformat("2026-06-14T23:30:00+00:00")


class Seeder:
    def __init__(self, container: Container, principal: Principal) -> None:
        self.container = container
        self.principal = principal
        self.count = 0

    async def event(self, **fields: Any) -> dict[str, Any]:
        self.count += 1
        fields.setdefault("occurred_at", self.container.clock.now())
        if "total" in fields:
            fields["total"] = Decimal(fields["total"])
        recorded = await self.container.events.record(
            self.principal, f"k{self.count}", EventIn(**fields)
        )
        assert recorded.status == 201, recorded.body
        return recorded.body

    async def adjust(self, member: str, points: int) -> None:
        await self.container.ledger.adjust(
            member, AdjustmentIn(points=points, reason="goodwill"), self.principal
        )


async def _seed(container: Container, clock: FixedClock) -> Seeder:
    issued = await container.api_keys.create("till", "pos")
    seeder = Seeder(container, Principal(issued.key.id, "till", Role.POS))
    clock.set(NOW - timedelta(days=2))
    await container.programs.publish({"program.yaml": V1}, "program.yaml", actor="t")
    for member in ("A", "B", "C", "D"):
        await container.members.create(NewMember(member_id=member))
    # Under v1 (no expiry policy): A's review never expires; the surveys carry their
    # own 47-day expiry.
    await seeder.event(type="custom", name="review", member_id="A")
    clock.set(LATE_EVENING)
    await seeder.event(type="custom", name="survey", member_id="A")
    await seeder.event(type="custom", name="survey", member_id="B")
    clock.set(NOW)
    await container.programs.publish({"program.yaml": V2}, "program.yaml", actor="t")
    # Under v2: earned on 2026-06-15, expiring two months later, in August.
    await seeder.event(type="purchase", member_id="A", order_id="OA1", total="100.00")
    await seeder.event(type="purchase", member_id="B", order_id="OB1", total="300.00")
    await seeder.adjust("C", 40)
    clock.set(NOW + timedelta(days=8))
    assert await container.ledger_jobs.vest_due(clock.now()) == 400
    # B spends 320 of 350 (the survey lot first, it expires first), then returns the
    # whole order: 30 clawed from the order's lot, 270 already spent, so B owes 270.
    await seeder.adjust("B", -320)
    refund = await seeder.event(type="refund", member_id="B", order_id="OB1", total="300.00")
    assert refund["balances"]["available"] == -270
    await seeder.event(type="purchase", member_id="C", order_id="OC1", total="80.00")
    return seeder


async def test_liability_figures(container: Container, clock: FixedClock) -> None:
    await _seed(container, clock)
    assert (await verify(container.db)).ok
    report = await container.reports.liability()
    assert report.program_version == 2
    assert (report.currency, report.point_value) == ("EUR", "0.05")
    # Available: A 20 + 50 + 100, C 40; B's -270 is debt, not netted.
    assert (report.available.points, report.available.value) == (210, "10.50")
    assert (report.debt.points, report.debt.value) == (270, "13.50")
    assert (report.pending.points, report.pending.value) == (80, "4.00")
    assert (report.held.points, report.held.value) == (0, "0.00")
    assert (report.total.points, report.total.value) == (290, "14.50")
    # A, B (negative) and C; D has nothing.
    assert report.members_with_balance == 3
    profile = [(b.month, b.points, b.value) for b in report.expiry_profile]
    assert profile == [("2026-07", 50, "2.50"), ("2026-08", 140, "7.00"), ("never", 20, "1.00")]
    assert sum(b.points for b in report.expiry_profile) == report.available.points

    # Once A's survey lot expires, it leaves both the balance and the profile.
    clock.set(datetime.fromisoformat("2026-08-01T00:00:00+00:00"))
    assert await container.ledger_jobs.expire_due(clock.now()) == 50
    later = await container.reports.liability()
    assert later.available.points == 160
    assert [b.month for b in later.expiry_profile] == ["2026-08", "never"]


async def test_liability_with_no_programme_has_no_money_value(container: Container) -> None:
    report = await container.reports.liability()
    assert report.program_version is None
    assert report.currency is None
    assert (report.total.points, report.total.value) == (0, None)
    assert report.members_with_balance == 0
    assert report.expiry_profile == []


async def test_liability_over_http_is_for_marketers(
    container: Container, clock: FixedClock, client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    await _seed(container, clock)
    for role in ("pos", "app"):
        denied = await client.get("/v1/reports/liability", headers={"Authorization": keys[role]})
        assert denied.status_code == 403, role
        assert denied.headers["content-type"].startswith("application/problem+json")
    response = await client.get(
        "/v1/reports/liability", headers={"Authorization": keys["marketer"]}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["currency"] == "EUR"
    assert body["available"] == {"points": 210, "value": "10.50"}
    assert body["debt"] == {"points": 270, "value": "13.50"}
    assert body["total"] == {"points": 290, "value": "14.50"}
    assert body["members_with_balance"] == 3
    assert body["expiry_profile"][-1] == {"month": "never", "points": 20, "value": "1.00"}
    assert body["as_of"] == "2026-06-23T09:30:00Z"
    admin = await client.get("/v1/reports/liability", headers={"Authorization": keys["admin"]})
    assert admin.status_code == 200
    anonymous = await client.get("/v1/reports/liability")
    assert anonymous.status_code == 401
