"""Properties that must hold for any purchase: determinism, no negative points, caps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from loyalty.rules import EventInput, LineItem, MemberInput, compile_program

EXAMPLE = compile_program(Path(__file__).resolve().parents[2] / "examples" / "tea-house.yaml")
CATEGORIES = ["tea-leaves", "tea-drinks", "teaware", "mooncake", "snack"]

money = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("900"), places=2)
line_items = st.builds(
    LineItem,
    sku=st.sampled_from(["A", "B", "C"]),
    category=st.sampled_from(CATEGORIES),
    quantity=st.integers(min_value=1, max_value=5),
    unit_price=money,
)
events = st.builds(
    EventInput,
    type=st.just("purchase"),
    occurred_at=st.datetimes(
        min_value=datetime(2024, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
    ),
    items=st.lists(line_items, min_size=1, max_size=8).map(tuple),
    store_id=st.sampled_from([None, "sh-jingan", "xj-urumqi"]),
    channel=st.sampled_from([None, "app", "store"]),
    payment_method=st.sampled_from([None, "alipay", "card"]),
    currency=st.just("CNY"),
)
members = st.builds(
    MemberInput,
    member_id=st.just("m"),
    tier=st.sampled_from(["member", "silver", "gold", "black"]),
    tags=st.frozensets(st.sampled_from(["staff", "vip"]), max_size=1),
    joined_at=st.just(datetime(2023, 6, 1, tzinfo=UTC)) | st.none(),
    timezone=st.sampled_from([None, "Asia/Shanghai", "America/Los_Angeles"]),
)


@settings(max_examples=150, deadline=None)
@given(events, members)
def test_evaluation_is_deterministic_and_never_negative(
    event: EventInput, member: MemberInput
) -> None:
    first = EXAMPLE.evaluate(event, member, explain=True)
    assert EXAMPLE.evaluate(event, member, explain=True) == first
    assert all(award.points > 0 for award in first.awards)
    assert first.total_points == sum(award.points for award in first.awards)
    assert first.total_points <= 20000  # the programme's max_points_per_event


@settings(max_examples=150, deadline=None)
@given(events, members, st.integers(min_value=0, max_value=120))
def test_caps_are_never_exceeded(event: EventInput, member: MemberInput, used: int) -> None:
    keys = EXAMPLE.counter_keys(event, member)
    counters = dict.fromkeys(keys, used)
    result = EXAMPLE.evaluate(event, member, counters)
    for increment in result.counter_increments:
        rule = EXAMPLE.rule(increment.key.rule_id)
        limit = next(
            lim
            for lim in rule.limits
            if (lim.unit, lim.scope) == (increment.key.unit, increment.key.scope)
        )
        assert used + increment.amount <= limit.maximum
    blocked_once = [k.rule_id for k in keys if k.unit == "times" and k.window_start is None]
    if used >= 1:
        assert not set(blocked_once) & set(result.fired)


def test_a_pending_award_always_vests_after_the_event() -> None:
    at = datetime(2025, 3, 12, 4, tzinfo=UTC)
    event = EventInput(type="purchase", occurred_at=at, total=Decimal("50"), currency="CNY")
    result = EXAMPLE.evaluate(event, MemberInput(member_id="m"))
    assert [a.vests_at for a in result.awards] == [at + timedelta(days=14)]
