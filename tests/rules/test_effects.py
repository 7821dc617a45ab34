from __future__ import annotations

from datetime import timedelta

import pytest

from .helpers import WEDNESDAY, item, member, programme, purchase


@pytest.mark.parametrize(
    ("rounding", "total", "points"),
    [
        ("floor", "88.99", 88),
        ("ceil", "88.01", 89),
        ("round-half-up", "88.50", 89),
        ("round-half-up", "88.49", 88),
    ],
)
def test_points_per_currency_unit_rounding(rounding: str, total: str, points: int) -> None:
    p = programme(
        f"- {{id: base, on: purchase, award: {{per_amount: '1.00', rounding: {rounding}}}}}"
    )
    assert p.evaluate(purchase(total), member()).total_points == points


def test_per_amount_multiplies_before_dividing_so_thirds_are_exact() -> None:
    p = programme("- {id: base, on: purchase, award: {per_amount: '3.00', points: 1}}")
    assert p.evaluate(purchase("300.00"), member()).total_points == 100


def test_several_points_per_step() -> None:
    p = programme("- {id: base, on: purchase, award: {per_amount: '10.00', points: 3}}")
    assert p.evaluate(purchase("95.00"), member()).total_points == 28


def test_fixed_points() -> None:
    p = programme("- {id: bonus, on: purchase, award: {fixed: 50}}")
    assert p.evaluate(purchase(), member()).total_points == 50


def test_points_per_item_counts_quantity_of_matching_lines_only() -> None:
    p = programme("- {id: drinks, on: purchase, items: {category: drinks}, award: {per_item: 5}}")
    event = purchase(None, items=(item("drinks", "18.00", 3), item("snack", "9.00", 2)))
    assert p.evaluate(event, member()).total_points == 15


def test_percent_of_qualifying_amount_uses_point_value() -> None:
    # 10% of the 200 CNY of tea = 20 CNY = 2000 points at 0.01 CNY per point.
    p = programme("- {id: tea, on: purchase, items: {category: tea}, award: {percent: 10}}")
    event = purchase(None, items=(item("tea", "100.00", 2), item("cup", "50.00")))
    assert p.evaluate(event, member()).total_points == 2000


def test_line_discounts_reduce_the_qualifying_amount() -> None:
    p = programme("- {id: base, on: purchase, award: {per_amount: '1.00'}}")
    event = purchase(None, items=(item("tea", "100.00", 2, discount="30.00"),))
    assert p.evaluate(event, member()).total_points == 170


def test_pending_award_vests_after_the_return_window_and_may_expire() -> None:
    p = programme(
        "- {id: base, on: purchase, award: {fixed: 10}, pending_days: 14, expires_after_days: 365}"
    )
    award = p.evaluate(purchase(), member()).awards[0]
    assert award.pending is True
    assert award.vests_at == WEDNESDAY + timedelta(days=14)
    assert award.expires_at == WEDNESDAY + timedelta(days=365)


def test_available_award_has_no_vesting_date() -> None:
    p = programme("- {id: base, on: purchase, award: {fixed: 10}}")
    result = p.evaluate(purchase(), member())
    assert (result.awards[0].pending, result.awards[0].vests_at) == (False, None)
    assert (result.pending_points, result.available_points) == (0, 10)


def test_tag_effect_lists_only_tags_the_member_lacks() -> None:
    p = programme("- {id: tagger, on: purchase, tag: [vip, regular]}")
    result = p.evaluate(purchase(), member(tags=frozenset({"regular"})))
    assert result.tags == ("vip",)
    assert result.fired == ("tagger",)
    assert result.total_points == 0


MULTIPLIERS = """
- {id: base, on: purchase, priority: 10, award: {per_amount: '1.00'}, pending_days: 14}
- {id: gold, on: purchase, when: {tier: gold}, multiply: 2, applies_to: base,
   reason: "2x points: Gold tier"}
- {id: weekend, on: purchase, when: {weekdays: [wed]}, multiply: 3, applies_to: [base]}
"""


def test_multipliers_add_by_default() -> None:
    result = programme(MULTIPLIERS).evaluate(purchase("100.00"), member("gold"))
    # 2x and 3x stack additively: 100 + 100 + 200 = 4x.
    assert result.total_points == 400
    gold = next(a for a in result.awards if a.rule_id == "gold")
    assert (gold.kind, gold.multiplier_of, gold.points) == ("multiplier", "base", 100)
    assert gold.reason == "2x points: Gold tier"


def test_multipliers_compound_when_the_programme_says_so() -> None:
    p = programme(MULTIPLIERS, extra="multiplier_stacking: compound\n")
    result = p.evaluate(purchase("100.00"), member("gold"))
    assert result.total_points == 600  # 100 x 2 x 3


def test_multiplier_extra_points_follow_the_targets_pending_state() -> None:
    result = programme(MULTIPLIERS).evaluate(purchase("100.00"), member("gold"))
    assert all(a.pending for a in result.awards)
    assert result.pending_points == result.total_points


def test_multiplier_without_its_target_firing_awards_nothing() -> None:
    p = programme("""
    - {id: tea, on: purchase, items: {category: tea}, award: {fixed: 10}}
    - {id: gold, on: purchase, multiply: 2, applies_to: tea}
    """)
    result = p.evaluate(purchase(), member("gold"))
    assert result.total_points == 0
    assert result.fired == ()


def test_fractional_multiplier_rounds_extra_points_down() -> None:
    p = programme("""
    - {id: base, on: purchase, award: {per_amount: '1.00'}}
    - {id: silver, on: purchase, multiply: "1.5", applies_to: base}
    """)
    assert p.evaluate(purchase("33.00"), member()).total_points == 33 + 16
