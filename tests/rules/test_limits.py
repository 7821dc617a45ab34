from __future__ import annotations

from datetime import UTC, datetime

from loyalty.rules import CounterKey

from .helpers import WEDNESDAY, member, programme, purchase


def only_key(p, rule_id: str, unit: str = "times") -> CounterKey:  # type: ignore[no-untyped-def]
    keys = [
        k for k in p.counter_keys(purchase(), member()) if (k.rule_id, k.unit) == (rule_id, unit)
    ]
    assert len(keys) == 1
    return keys[0]


def test_counter_keys_describe_calendar_windows_in_the_members_zone() -> None:
    p = programme("""
    - id: r
      on: purchase
      award: {fixed: 1}
      limits:
        - {max_times: 1, period: week}
        - {max_points: 100, period: month}
        - {max_points: 500, period: year}
        - {max_times: 3, period: lifetime}
        - {max_points: 50, rolling_days: 7}
    """)
    keys = p.counter_keys(purchase(), member())
    windows = [(k.unit, k.window_start, k.window_end) for k in keys]
    assert windows == [
        ("times", datetime(2025, 3, 9, 16, tzinfo=UTC), datetime(2025, 3, 16, 16, tzinfo=UTC)),
        ("points", datetime(2025, 2, 28, 16, tzinfo=UTC), datetime(2025, 3, 31, 16, tzinfo=UTC)),
        ("points", datetime(2024, 12, 31, 16, tzinfo=UTC), datetime(2025, 12, 31, 16, tzinfo=UTC)),
        ("times", None, None),
        (
            "points",
            datetime(2025, 3, 5, 4, tzinfo=UTC),
            datetime(2025, 3, 12, 4, 0, 0, 1, tzinfo=UTC),
        ),
    ]
    assert {k.member_id for k in keys} == {"m-1"}


def test_times_cap_blocks_the_rule_once_reached() -> None:
    p = programme(
        "- {id: r, on: purchase, award: {fixed: 5}, limits: [{max_times: 2, period: day}]}"
    )
    key = only_key(p, "r")
    assert p.evaluate(purchase(), member(), {key: 1}).total_points == 5
    blocked = p.evaluate(purchase(), member(), {key: 2}, explain=True)
    assert blocked.total_points == 0
    assert blocked.not_fired[0].reason == "limit reached: 2 times per member per day (used 2)"


def test_points_cap_trims_the_award_and_marks_it_capped() -> None:
    p = programme(
        "- {id: r, on: purchase, award: {per_amount: '1.00'}, "
        "limits: [{max_points: 100, period: month}]}"
    )
    key = only_key(p, "r", "points")
    result = p.evaluate(purchase("80.00"), member(), {key: 70})
    assert result.total_points == 30
    award = result.awards[0]
    assert award.capped is True
    assert award.cap_note == "capped: 100 points per member per month (used 70)"
    assert [(i.key, i.amount) for i in result.counter_increments] == [(key, 30)]


def test_counter_increments_record_times_and_points() -> None:
    p = programme("""
    - id: r
      on: purchase
      award: {fixed: 7}
      limits: [{max_times: 5, period: day}, {max_points: 99, period: day}]
    """)
    result = p.evaluate(purchase(), member())
    assert sorted((i.key.unit, i.amount) for i in result.counter_increments) == [
        ("points", 7),
        ("times", 1),
    ]


def test_once_per_member_is_a_lifetime_times_cap() -> None:
    p = programme("- {id: first, on: purchase, award: {fixed: 200}, once_per_member: true}")
    key = only_key(p, "first")
    assert (key.scope, key.window_start, key.window_end) == ("member", None, None)
    assert p.evaluate(purchase(), member(), {key: 0}).total_points == 200
    assert p.evaluate(purchase(), member(), {key: 1}).total_points == 0


def test_campaign_budget_spans_the_rules_validity_and_trims_the_last_award() -> None:
    p = programme("""
    - id: launch
      on: purchase
      award: {fixed: 100}
      budget: 1000
      active_from: 2025-03-01T00:00:00+08:00
      active_until: 2025-04-01T00:00:00+08:00
    """)
    key = only_key(p, "launch", "points")
    assert key.scope == "campaign"
    assert key.member_id is None
    assert key.window_start == datetime(2025, 2, 28, 16, tzinfo=UTC)
    assert p.evaluate(purchase(), member(), {key: 960}).total_points == 40
    assert p.evaluate(purchase(), member(), {key: 1000}).total_points == 0


def test_per_event_maximum_of_a_rule() -> None:
    p = programme("- {id: r, on: purchase, award: {per_amount: '1.00'}, max_per_event: 50}")
    award = p.evaluate(purchase("80.00"), member()).awards[0]
    assert (award.points, award.capped, award.cap_note) == (
        50,
        True,
        "capped at 50 points per event",
    )


def test_programme_maximum_trims_lowest_priority_awards_first() -> None:
    p = programme(
        """
    - {id: base, on: purchase, priority: 10, award: {fixed: 80}}
    - {id: bonus, on: purchase, priority: 1, award: {fixed: 50}}
    """,
        extra="max_points_per_event: 100\n",
    )
    result = p.evaluate(purchase(), member())
    assert [(a.rule_id, a.points, a.capped) for a in result.awards] == [
        ("base", 80, False),
        ("bonus", 20, True),
    ]


def test_multiplier_extras_are_computed_on_the_capped_base() -> None:
    p = programme("""
    - {id: base, on: purchase, award: {per_amount: '1.00'}, max_per_event: 40}
    - {id: gold, on: purchase, multiply: 2, applies_to: base}
    """)
    assert p.evaluate(purchase("100.00"), member()).total_points == 80


def test_missing_counters_count_as_zero() -> None:
    p = programme(
        "- {id: r, on: purchase, award: {fixed: 5}, limits: [{max_times: 1, period: day}]}"
    )
    assert p.evaluate(purchase(), member()).total_points == 5
    assert WEDNESDAY.tzinfo is not None
