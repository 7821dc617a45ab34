from __future__ import annotations

from loyalty.rules import (
    CounterValue,
    SimulationCase,
    compile_source,
    simulate,
)

from .helpers import HEADER, member, programme, purchase

RULES = """
- {id: base, on: purchase, priority: 10, award: {per_amount: '1.00'}, reason: "1 point per CNY"}
- {id: gold, on: purchase, when: {tier: [gold, black]}, multiply: 2, applies_to: base,
   reason: "2x points: Gold tier"}
- {id: big, on: purchase, when: {amount: {min: '500.00'}}, award: {fixed: 100}}
- {id: review, on: custom, event: review, award: {fixed: 20}}
"""


def test_awards_carry_rule_id_and_human_reason() -> None:
    result = programme(RULES).evaluate(purchase("88.00"), member("gold"))
    assert [(a.rule_id, a.reason, a.points) for a in result.awards] == [
        ("base", "1 point per CNY", 88),
        ("gold", "2x points: Gold tier", 88),
    ]


def test_default_reason_describes_the_award() -> None:
    result = programme(RULES).evaluate(purchase("800.00"), member())
    assert result.awards[1].reason == "100 points (big)"


def test_explain_lists_every_rule_that_did_not_fire_with_the_failed_condition() -> None:
    result = programme(RULES).evaluate(purchase("88.00"), member("silver"), explain=True)
    reasons = {t.rule_id: t.reason for t in result.not_fired}
    assert reasons == {
        "gold": "member tier is 'silver', needs one of gold, black",
        "big": "amount is 88.00, needs at least 500.00",
        "review": "runs on custom 'review' events, this is purchase",
    }


def test_explain_off_lists_nothing_and_awards_the_same() -> None:
    p = programme(RULES)
    plain = p.evaluate(purchase("88.00"), member("silver"))
    explained = p.evaluate(purchase("88.00"), member("silver"), explain=True)
    assert plain.not_fired == ()
    assert plain.awards == explained.awards


def test_simulate_totals_and_baseline_differences() -> None:
    draft = programme(RULES)
    baseline = compile_source(
        HEADER + "rules:\n  - {id: base, on: purchase, award: {per_amount: '1.00'}}\n"
    )
    cases = [
        SimulationCase(event=purchase("100.00"), member=member("gold")),
        SimulationCase(event=purchase("600.00"), member=member("member")),
    ]
    result = simulate(draft, cases, baseline)
    assert [c.evaluation.total_points for c in result.cases] == [200, 700]
    assert [c.points_delta for c in result.cases] == [100, 100]
    assert (result.total_points, result.baseline_total_points, result.points_delta) == (
        900,
        700,
        200,
    )
    assert result.points_by_rule == {"base": 700, "gold": 100, "big": 100}
    assert result.rule_deltas == {"base": 0, "big": 100, "gold": 100}


def test_simulate_without_baseline_and_with_counters() -> None:
    p = programme(
        "- {id: r, on: purchase, award: {fixed: 5}, limits: [{max_times: 1, period: day}]}"
    )
    (key,) = p.counter_keys(purchase(), member())
    cases = [
        SimulationCase(event=purchase(), member=member()),
        SimulationCase(
            event=purchase(), member=member(), counters=(CounterValue(key=key, value=1),)
        ),
    ]
    result = simulate(p, cases)
    assert [c.evaluation.total_points for c in result.cases] == [5, 0]
    assert result.baseline_total_points is None
    assert result.rule_deltas is None
