"""Scheduled gifts and the scheduler's jobs, with a controlled clock, on both dialects."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import func, select

from loyalty.api.app import create_app
from loyalty.bootstrap import Container
from loyalty.clock import FixedClock
from loyalty.db.schema import grants, job_runs, notifications
from loyalty.ledger.audit import verify
from loyalty.members.model import NewMember
from loyalty.tiers.model import TierAssignment
from tests.conftest import auth

PROGRAM = """
program: gifts
currency: CNY
point_value: "0.01"
timezone: Asia/Shanghai
custom_dates: { singles-day: "11-11" }
tiers:
  - { id: member, benefits: { birthday_points: 100 } }
  - { id: gold, qualify: { spend: "5000.00" }, benefits: { birthday_points: 500 } }
expiry: { policy: end_of_year }
scheduled:
  look_back_days: 3
  expiry_notice_days: 10
  birthday: { on: day, points: 10 }
  anniversary: { points: 50 }
  holidays:
    - id: singles-day
      custom_date: singles-day
      points: 111
      consent_required: true
    - id: spring-festival
      holiday: { country: CN, name: "Chinese New Year (Spring Festival)" }
      points: 888
      tiers: [gold]
rules:
  - { id: base, on: purchase, award: { per_amount: "1.00" } }
"""
JOINED = datetime(2020, 1, 1, tzinfo=UTC)


async def _setup(container: Container, clock: FixedClock, at: datetime) -> None:
    clock.set(datetime(2019, 1, 1, tzinfo=UTC))
    await container.programs.publish({"p.yaml": PROGRAM}, "p.yaml", actor="test")
    clock.set(at)


async def _member(container: Container, member_id: str, **fields: Any) -> None:
    fields.setdefault("joined_at", JOINED)
    await container.members.create(NewMember(member_id=member_id, **fields))


async def _given(container: Container) -> list[tuple[str, str, int]]:
    async with container.db.read() as conn:
        rows = await conn.execute(
            select(grants.c.member_id, grants.c.occurrence, grants.c.points).order_by(
                grants.c.member_id, grants.c.occurrence
            )
        )
        return [(str(m), o, p) for m, o, p in rows]


async def _notices(container: Container, kind: str) -> list[dict[str, Any]]:
    async with container.db.read() as conn:
        rows = await conn.execute(
            select(notifications.c.payload).where(notifications.c.kind == kind)
        )
        return [row.payload for row in rows]


async def test_birthday_at_local_midnight_across_time_zones(
    container: Container, clock: FixedClock
) -> None:
    # 2026-06-20 00:00 in Shanghai is 06-19 16:00 UTC; in Los Angeles 06-20 07:00 UTC.
    await _setup(container, clock, datetime(2026, 6, 19, 15, 0, tzinfo=UTC))
    birthday = date(1990, 6, 20)
    await _member(container, "SH", birthday=birthday, timezone="Asia/Shanghai")
    await _member(container, "LA", birthday=birthday, timezone="America/Los_Angeles")
    assert (await container.scheduler.run("grants")).counts.get("granted", 0) == 0
    clock.set(datetime(2026, 6, 19, 16, 0, tzinfo=UTC))
    result = await container.scheduler.run("grants")
    assert result.counts["granted"] == 1
    clock.set(datetime(2026, 6, 20, 6, 59, tzinfo=UTC))
    assert (await container.scheduler.run("grants")).counts["granted"] == 0
    clock.set(datetime(2026, 6, 20, 7, 0, tzinfo=UTC))
    assert (await container.scheduler.run("grants")).counts["granted"] == 1
    given = await _given(container)
    assert [(o, p) for _, o, p in given] == [("birthday:2026", 100)] * 2
    assert (await verify(container.db)).ok


async def test_leap_day_birthday_on_28_february(container: Container, clock: FixedClock) -> None:
    await _setup(container, clock, datetime(2027, 2, 28, 1, 0, tzinfo=UTC))
    await _member(container, "LEAP", birthday=date(2000, 2, 29))
    await _member(container, "MARCH", birthday=date(2000, 3, 1))
    result = await container.scheduler.run("grants")
    assert result.counts["granted"] == 1
    assert [o for _, o, _ in await _given(container)] == ["birthday:2027"]


async def test_catch_up_after_three_missed_days_then_rerun_is_a_no_op(
    container: Container, clock: FixedClock
) -> None:
    await _setup(container, clock, datetime(2026, 6, 15, 12, 0, tzinfo=UTC))
    for n, day in enumerate((12, 13, 14, 15)):
        await _member(container, f"D{n}", birthday=date(1985, 6, day))
    await _member(container, "TOO-OLD", birthday=date(1985, 6, 10))  # beyond the look-back
    first = await container.scheduler.run("grants")
    assert first.counts["granted"] == 4
    again = await container.scheduler.run("grants")
    assert again.counts.get("granted", 0) == 0
    assert again.counts["due"] == 4
    assert len(await _given(container)) == 4  # each once: not stacked, not twice
    assert (await verify(container.db)).ok


async def test_late_joiner_and_consent(container: Container, clock: FixedClock) -> None:
    await _setup(container, clock, datetime(2026, 11, 11, 12, 0, tzinfo=UTC))
    await _member(container, "YES", marketing_consent=True, birthday=date(1990, 11, 11))
    await _member(container, "NO", marketing_consent=False, birthday=date(1990, 11, 11))
    # Joined after this year's birthday moment: the gift is next year's.
    await _member(
        container,
        "LATE",
        birthday=date(1990, 11, 11),
        joined_at=datetime(2026, 11, 11, 11, 0, tzinfo=UTC),
    )
    dry = await container.scheduler.run("grants", dry_run=True)
    assert dry.counts["granted"] == 3  # two birthdays, one 11.11 (consent required)
    assert await _given(container) == []
    await container.scheduler.run("grants")
    occurrences = sorted(o for _, o, _ in await _given(container))
    assert occurrences == ["birthday:2026", "birthday:2026", "singles-day:2026"]
    greetings = await _notices(container, "birthday_gift")
    assert len(greetings) == 1  # only the member who accepted messages is greeted
    assert greetings[0]["template"] == "birthday"
    assert greetings[0]["points"] == 100
    assert "locale" in greetings[0]


async def test_expiry_notice_expiry_and_vesting_keep_the_ledger_whole(
    container: Container, clock: FixedClock
) -> None:
    await _setup(container, clock, datetime(2026, 12, 25, 12, 0, tzinfo=UTC))
    await _member(container, "E", marketing_consent=True, birthday=date(1990, 12, 25))
    await container.scheduler.run("grants")  # 100 points, expiring at the end of the year
    warned = await container.scheduler.run("expiry_notices")
    assert warned.counts["lots"] == 1
    assert (await container.scheduler.run("expiry_notices")).counts["lots"] == 0
    assert len(await _notices(container, "points_expiring")) == 1
    clock.set(datetime(2027, 1, 2, tzinfo=UTC))
    assert (await container.scheduler.run("expiry", dry_run=True)).counts["points"] == 100
    assert (await container.scheduler.run("expiry")).counts["points"] == 100
    assert (await container.scheduler.run("expiry")).counts["points"] == 0
    assert (await container.scheduler.run("vesting")).counts["points"] == 0
    assert (await container.scheduler.run("tier_review")).error is None
    assert (await container.scheduler.run("hold_timeouts")).counts["released"] == 0
    assert (await verify(container.db)).ok


async def test_job_runs_are_listed_for_admins_only(
    container: Container, clock: FixedClock, client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    await _setup(container, clock, datetime(2026, 6, 15, tzinfo=UTC))
    for job in ("grants", "expiry", "vesting"):
        await container.scheduler.run(job)
    async with container.db.read() as conn:
        assert await conn.scalar(select(func.count()).select_from(job_runs)) == 3
    for role in ("pos", "app", "marketer"):
        refused = await client.get("/v1/jobs/runs", headers=auth(keys, role))
        assert refused.status_code == 403
    first = await client.get("/v1/jobs/runs", params={"limit": 2}, headers=auth(keys))
    assert first.status_code == 200, first.text
    body = first.json()
    assert [run["job"] for run in body["items"]] == ["vesting", "expiry"]
    assert body["items"][0]["status"] == "ok"
    rest = await client.get(
        "/v1/jobs/runs", params={"after": body["next_cursor"]}, headers=auth(keys)
    )
    assert [run["job"] for run in rest.json()["items"]] == ["grants"]
    assert rest.json()["next_cursor"] is None


async def test_holiday_for_eligible_tier_only(container: Container, clock: FixedClock) -> None:
    # Spring Festival 2027 is 6 February.
    await _setup(container, clock, datetime(2027, 2, 6, 12, 0, tzinfo=UTC))
    await _member(container, "PLAIN")
    await _member(container, "GOLD")
    await container.tiers.assign(
        "GOLD",
        TierAssignment(tier="gold", until=datetime(2028, 1, 1, tzinfo=UTC)),
        "test",
    )
    result = await container.scheduler.run("grants")
    assert result.counts["granted"] == 1
    assert [o for _, o, _ in await _given(container)] == ["spring-festival:2027"]


async def test_serve_with_scheduler_starts_and_stops_the_loop(container: Container) -> None:
    app = create_app(container, with_scheduler=True)
    async with app.lifespan():
        await asyncio.sleep(0.2)  # the loop has started and is waiting for its first job
    # Leaving the lifespan stopped the loop (it would otherwise hang the test).


REWARD_PROGRAM = """
program: reward-gifts
currency: CNY
point_value: "0.01"
timezone: Asia/Shanghai
rewards:
  tea-set: { kind: gift, cost: 1000, coupon_days: 60 }
scheduled:
  holidays:
    - id: mid-autumn
      holiday: { country: CN, name: "Mid-Autumn Festival" }
      reward: tea-set
      active_within_days: 90
rules:
  - { id: base, on: purchase, award: { per_amount: "1.00" } }
"""


async def test_holiday_gift_as_a_catalog_reward_for_active_members(
    container: Container, clock: FixedClock
) -> None:
    from loyalty.auth.keys import Principal, Role
    from loyalty.ledger.model import EventIn

    clock.set(datetime(2026, 6, 1, tzinfo=UTC))
    await container.programs.publish({"p.yaml": REWARD_PROGRAM}, "p.yaml", actor="test")
    await _member(container, "ACTIVE")
    await _member(container, "DORMANT")
    key = await container.api_keys.create("till", "pos")
    till = Principal(key.key.id, "till", Role.POS)
    clock.set(datetime(2026, 8, 1, tzinfo=UTC))  # within 90 days of the festival
    await container.events.record(
        till,
        "o1",
        EventIn(
            type="purchase",
            member_id="ACTIVE",
            order_id="O1",
            total=Decimal("10.00"),
            occurred_at=clock.now(),
        ),
    )
    # Mid-Autumn Festival 2026 is 25 September.
    clock.set(datetime(2026, 9, 25, 12, 0, tzinfo=UTC))
    result = await container.scheduler.run("grants")
    assert result.counts["granted"] == 1
    coupons = await container.rewards.coupons_of("ACTIVE")
    assert [(c.reward_id, c.fulfilment) for c in coupons] == [("tea-set", "ordered")]
    assert await container.rewards.coupons_of("DORMANT") == []
    assert (await container.ledger.balance("ACTIVE")).available == 10  # no points given
    again = await container.scheduler.run("grants")
    assert again.counts.get("granted", 0) == 0
    assert len(await container.rewards.coupons_of("ACTIVE")) == 1


async def test_birthday_notice_waits_for_the_end_of_quiet_hours(
    container: Container, clock: FixedClock
) -> None:
    await _setup(container, clock, datetime(2026, 5, 9, 16, 30, tzinfo=UTC))  # 00:30 Shanghai
    await _member(
        container,
        "QUIET",
        birthday=date(1990, 5, 10),
        timezone="Asia/Shanghai",
        marketing_consent=True,
        quiet_hours="22:00-08:00",
    )
    await container.scheduler.run("grants")
    [notice] = await _notices(container, "birthday_gift")
    assert notice["deliver_after"] == "2026-05-10T08:00:00+08:00"
    assert notice["points"] == 100  # the member tier's birthday_points benefit
