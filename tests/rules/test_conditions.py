from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from loyalty.rules import Program

from .helpers import WEDNESDAY, item, member, programme, purchase


def rule_when(condition: str, expr: str | None = None) -> Program:
    extra = f", expr: '{expr}'" if expr else ""
    return programme(f"- {{id: r, on: purchase, when: {condition}, award: {{fixed: 1}}{extra}}}")


def fires(p: Program, event=None, who=None) -> bool:  # type: ignore[no-untyped-def]
    return p.evaluate(event or purchase(), who or member()).fired == ("r",)


@pytest.mark.parametrize(
    ("total", "expected"), [("49.99", False), ("50.00", True), ("200.00", True), ("200.01", False)]
)
def test_amount_range_is_inclusive(total: str, expected: bool) -> None:
    assert fires(rule_when("{amount: {min: '50.00', max: '200.00'}}"), purchase(total)) is expected


def test_amount_without_total_sums_the_lines() -> None:
    p = rule_when("{amount: {min: '50.00'}}")
    assert fires(p, purchase(None, items=(item("tea", "30.00", 2),)))
    assert not fires(p, purchase(None, items=(item("tea", "30.00"),)))


@pytest.mark.parametrize(
    ("condition", "fields", "expected"),
    [
        ("{store: sh-1}", {"store_id": "sh-1"}, True),
        ("{store: [sh-1]}", {"store_id": "la-1"}, False),
        ("{channel: [app, web]}", {"channel": "app"}, True),
        ("{channel: [app, web]}", {"channel": "store"}, False),
        ("{payment_method: alipay}", {"payment_method": "alipay"}, True),
        ("{payment_method: alipay}", {}, False),
        ("{event_attribute: {campaign: spring}}", {"attributes": {"campaign": "spring"}}, True),
        ("{event_attribute: {campaign: spring}}", {"attributes": {"campaign": "autumn"}}, False),
    ],
)
def test_event_fields(condition: str, fields: dict[str, object], expected: bool) -> None:
    assert fires(rule_when(condition), purchase(**fields)) is expected


def test_currency_condition() -> None:
    p = rule_when("{currency: [CNY]}")
    assert fires(p, purchase())
    event = purchase()
    foreign = type(event)(
        **{**{f: getattr(event, f) for f in event.__struct_fields__}, "currency": "USD"}
    )
    assert not fires(p, foreign)


def test_per_amount_rules_ignore_events_in_another_currency() -> None:
    p = programme("- {id: r, on: purchase, award: {per_amount: '1.00'}}")
    event = purchase()
    usd = type(event)(
        **{**{f: getattr(event, f) for f in event.__struct_fields__}, "currency": "USD"}
    )
    assert p.evaluate(usd, member()).total_points == 0
    assert "not CNY" in p.evaluate(usd, member(), explain=True).not_fired[0].reason


def test_items_filters_by_sku_category_brand_and_minimums() -> None:
    p = rule_when("{items: {category: tea, brand: [longjing], min_quantity: 2, min_amount: '150'}}")
    good = (item("tea", "80.00", 2, brand="longjing"),)
    assert fires(p, purchase(None, items=good))
    assert not fires(p, purchase(None, items=(item("tea", "80.00", 1, brand="longjing"),)))
    assert not fires(p, purchase(None, items=(item("tea", "80.00", 2, brand="other"),)))
    sku = rule_when("{items: {sku: [A-1, B-2]}}")
    assert fires(sku, purchase(None, items=(item("x", "1.00", sku="B-2"),)))
    assert not fires(sku, purchase(None, items=(item("x", "1.00", sku="C-3"),)))


@pytest.mark.parametrize(
    ("tier", "expected"), [("gold", True), ("black", True), ("silver", False), (None, False)]
)
def test_member_tier(tier: str | None, expected: bool) -> None:
    assert fires(rule_when("{tier: [gold, black]}"), who=member(tier)) is expected


def test_member_tags_all_required() -> None:
    p = rule_when("{has_tags: [vip, tea-lover]}")
    assert fires(p, who=member(tags=frozenset({"vip", "tea-lover", "x"})))
    assert not fires(p, who=member(tags=frozenset({"vip"})))


def test_member_attribute_equals() -> None:
    p = rule_when("{member_attribute: {city: Hangzhou, newsletter: true}}")
    assert fires(p, who=member(attributes={"city": "Hangzhou", "newsletter": True}))
    assert not fires(p, who=member(attributes={"city": "Hangzhou"}))


def test_days_since_joining() -> None:
    p = rule_when("{days_since_joined: {max: 30}}")
    assert fires(p, who=member(joined_at=WEDNESDAY - timedelta(days=30)))
    assert not fires(p, who=member(joined_at=WEDNESDAY - timedelta(days=31)))
    assert not fires(p, who=member())  # unknown join date never qualifies


def test_birthday_month_and_today() -> None:
    month = rule_when("{birthday: month}")
    today = rule_when("{birthday: today}")
    assert fires(month, who=member(birthday=date(1990, 3, 30)))
    assert not fires(month, who=member(birthday=date(1990, 4, 12)))
    assert fires(today, who=member(birthday=date(1990, 3, 12)))
    assert not fires(today, who=member(birthday=date(1990, 3, 13)))


def test_leap_day_birthday_is_celebrated_on_28_february() -> None:
    p = rule_when("{birthday: today}")
    at = datetime(2025, 2, 28, 4, tzinfo=UTC)
    assert fires(p, purchase(at=at), member(birthday=date(2000, 2, 29)))


def test_date_range_weekdays_and_hours_use_local_time() -> None:
    assert fires(rule_when("{date_range: {from: 2025-03-01, until: 2025-03-12}}"))
    assert not fires(rule_when("{date_range: {from: 2025-03-13}}"))
    assert fires(rule_when("{weekdays: [wed]}"))
    assert not fires(rule_when("{weekdays: [sat, sun]}"))
    assert fires(rule_when("{hours: {from: '12:00', until: '13:00'}}"))  # 12:00 Shanghai
    assert not fires(rule_when("{hours: {from: '11:00', until: '12:00'}}"))


def test_hours_may_span_midnight() -> None:
    p = rule_when("{hours: {from: '22:00', until: '02:00'}}")
    late = datetime(2025, 3, 12, 17, 30, tzinfo=UTC)  # 01:30 in Shanghai
    assert fires(p, purchase(at=late))
    assert not fires(p)


def test_custom_dates_recur_every_year() -> None:
    p = rule_when("{custom_date: singles-day}")
    assert fires(p, purchase(at=datetime(2031, 11, 11, 2, tzinfo=UTC)))
    assert not fires(p)


def test_combinators() -> None:
    p = rule_when("{any: [{tier: gold}, {has_tags: vip}], not: {channel: [web]}}")
    assert fires(p, purchase(channel="app"), member("gold"))
    assert fires(p, purchase(), member(tags=frozenset({"vip"})))
    assert not fires(p, purchase(channel="web"), member("gold"))
    assert not fires(p, purchase(), member("silver"))
    nested = rule_when("{all: [{tier: gold}, {any: [{weekdays: [wed]}, {weekdays: [sat]}]}]}")
    assert fires(nested, who=member("gold"))


def test_cel_expression_escape_hatch() -> None:
    p = rule_when(
        "{tier: [gold]}",
        expr='event.items.exists(i, i.unit_price >= 500.0) && local.weekday == "wed"',
    )
    pricey = purchase(None, items=(item("teaware", "680.00"),))
    assert fires(p, pricey, member("gold"))
    assert not fires(p, purchase(None, items=(item("teaware", "300.00", 3),)), member("gold"))


def test_cel_runtime_error_means_not_fired_and_is_explained() -> None:
    p = programme(
        "- {id: r, on: purchase, expr: 'event.attributes.missing > 1', award: {fixed: 1}}"
    )
    result = p.evaluate(purchase(), member(), explain=True)
    assert result.fired == ()
    assert result.not_fired[0].reason.startswith("expression failed")
