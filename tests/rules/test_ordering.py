from __future__ import annotations

import msgspec

from .helpers import member, programme, purchase


def test_rules_run_by_priority_then_id_not_file_position() -> None:
    rules = [
        "- {id: b-second, on: purchase, priority: 5, award: {fixed: 1}}",
        "- {id: a-first, on: purchase, priority: 5, award: {fixed: 2}}",
        "- {id: top, on: purchase, priority: 9, award: {fixed: 3}}",
    ]
    forward = programme("\n".join(rules)).evaluate(purchase(), member())
    backward = programme("\n".join(reversed(rules))).evaluate(purchase(), member())
    assert forward.fired == ("top", "a-first", "b-second")
    # Only the version hash (a hash of the text's content, order included) differs.
    assert msgspec.structs.replace(backward, program_version=forward.program_version) == forward


def test_stop_skips_every_lower_priority_rule() -> None:
    p = programme("""
    - {id: staff, on: purchase, priority: 100, when: {has_tags: staff}, stop: true}
    - {id: base, on: purchase, award: {fixed: 10}}
    """)
    staff = member(tags=frozenset({"staff"}))
    result = p.evaluate(purchase(), staff, explain=True)
    assert (result.fired, result.total_points) == (("staff",), 0)
    assert result.not_fired[0].reason == "not evaluated: 'staff' fired with stop: true"
    assert p.evaluate(purchase(), member()).total_points == 10


def test_exclusive_group_keeps_the_largest_award() -> None:
    p = programme("""
    - {id: small, on: purchase, priority: 9, group: festival, award: {fixed: 10}}
    - {id: large, on: purchase, priority: 1, group: festival, award: {fixed: 50}}
    - {id: other, on: purchase, award: {fixed: 1}}
    """)
    result = p.evaluate(purchase(), member(), explain=True)
    assert result.fired == ("large", "other")
    assert result.total_points == 51
    assert ("small", "exclusive group 'festival' won by 'large'") in [
        (t.rule_id, t.reason) for t in result.not_fired
    ]


def test_exclusive_group_ties_go_to_priority_then_id() -> None:
    p = programme("""
    - {id: zeta, on: purchase, priority: 1, group: g, award: {fixed: 10}}
    - {id: beta, on: purchase, priority: 1, group: g, award: {fixed: 10}}
    - {id: alpha, on: purchase, priority: 0, group: g, award: {fixed: 10}}
    """)
    assert p.evaluate(purchase(), member()).fired == ("beta",)


def test_exclusive_multiplier_group_keeps_the_largest_factor() -> None:
    p = programme("""
    - {id: base, on: purchase, award: {per_amount: '1.00'}}
    - {id: double, on: purchase, group: promo, multiply: 2, applies_to: base}
    - {id: triple, on: purchase, group: promo, multiply: 3, applies_to: base}
    """)
    result = p.evaluate(purchase("10.00"), member())
    assert result.total_points == 30
    assert "double" not in result.fired


def test_active_window_is_half_open() -> None:
    p = programme("""
    - id: spring
      on: purchase
      award: {fixed: 5}
      active_from: 2025-03-12T12:00:00+08:00
      active_until: 2025-03-12T13:00:00+08:00
    """)
    from datetime import UTC, datetime

    assert p.evaluate(purchase(at=datetime(2025, 3, 12, 4, tzinfo=UTC)), member()).fired
    assert not p.evaluate(purchase(at=datetime(2025, 3, 12, 5, tzinfo=UTC)), member()).fired
    late = p.evaluate(purchase(at=datetime(2025, 3, 12, 6, tzinfo=UTC)), member(), explain=True)
    assert late.not_fired[0].reason == "ended at 2025-03-12T13:00:00+08:00"


def test_triggers_route_events_to_their_rules() -> None:
    from datetime import UTC, datetime

    from loyalty.rules import EventInput

    p = programme("""
    - {id: review, on: custom, event: review, award: {fixed: 20}}
    - {id: survey, on: custom, event: survey, award: {fixed: 50}}
    - {id: signup, on: signup, award: {fixed: 100}}
    - {id: referral, on: referral, award: {fixed: 500}}
    - {id: refund-tag, on: refund, tag: [refunded]}
    """)
    at = datetime(2025, 3, 12, tzinfo=UTC)
    for kind, name, expected in [
        ("custom", "review", ("review",)),
        ("custom", "survey", ("survey",)),
        ("custom", "social_share", ()),
        ("signup", None, ("signup",)),
        ("referral", None, ("referral",)),
        ("refund", None, ("refund-tag",)),
        ("purchase", None, ()),
    ]:
        event = EventInput(type=kind, name=name, occurred_at=at)  # type: ignore[arg-type]
        assert p.evaluate(event, member()).fired == expected, (kind, name)
