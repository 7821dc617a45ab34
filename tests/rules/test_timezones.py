from __future__ import annotations

from datetime import UTC, datetime

from .helpers import member, programme, purchase

# Saturday 15 March 2025 01:00 UTC: Saturday 09:00 in Shanghai, Friday 18:00 in Los Angeles.
INSTANT = datetime(2025, 3, 15, 1, 0, tzinfo=UTC)

WEEKEND = (
    "- {id: weekend, on: purchase, clock: %s, when: {weekdays: [sat, sun]}, award: {fixed: 10}}"
)


def test_same_instant_is_weekend_in_shanghai_but_friday_in_los_angeles() -> None:
    p = programme(WEEKEND % "member")
    shanghai = member(timezone="Asia/Shanghai")
    los_angeles = member(timezone="America/Los_Angeles")
    assert p.evaluate(purchase(at=INSTANT), shanghai).total_points == 10
    assert p.evaluate(purchase(at=INSTANT), los_angeles).total_points == 0


def test_member_without_time_zone_uses_the_programme_zone() -> None:
    p = programme(WEEKEND % "member")
    assert p.evaluate(purchase(at=INSTANT), member()).total_points == 10


def test_store_clock_follows_the_store_not_the_member() -> None:
    p = programme(WEEKEND % "store")
    shanghai_member = member(timezone="Asia/Shanghai")
    assert p.evaluate(purchase(at=INSTANT, store_id="la-1"), shanghai_member).total_points == 0
    assert p.evaluate(purchase(at=INSTANT, store_id="sh-1"), shanghai_member).total_points == 10


def test_unknown_store_falls_back_to_the_programme_zone() -> None:
    p = programme(WEEKEND % "store")
    assert p.evaluate(purchase(at=INSTANT, store_id="elsewhere"), member()).total_points == 10


def test_program_clock_ignores_member_zone() -> None:
    p = programme(WEEKEND % "program")
    la = member(timezone="America/Los_Angeles")
    assert p.evaluate(purchase(at=INSTANT), la).total_points == 10


def test_daily_cap_window_is_the_members_local_day() -> None:
    p = programme(
        "- {id: daily, on: purchase, award: {fixed: 1}, limits: [{max_times: 1, period: day}]}"
    )
    (shanghai_key,) = p.counter_keys(purchase(at=INSTANT), member(timezone="Asia/Shanghai"))
    (la_key,) = p.counter_keys(purchase(at=INSTANT), member(timezone="America/Los_Angeles"))
    assert shanghai_key.window_start == datetime(2025, 3, 14, 16, 0, tzinfo=UTC)
    assert shanghai_key.window_end == datetime(2025, 3, 15, 16, 0, tzinfo=UTC)
    assert la_key.window_start == datetime(2025, 3, 14, 7, 0, tzinfo=UTC)  # PDT midnight
    assert la_key.window_end == datetime(2025, 3, 15, 7, 0, tzinfo=UTC)
