"""What-if runs: evaluate a batch of events against a programme, optionally a baseline."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from .engine import Program
from .inputs import EventInput, MemberInput
from .outputs import CounterKey, Evaluation


class CounterValue(msgspec.Struct, frozen=True, kw_only=True):
    key: CounterKey
    value: int


class SimulationCase(msgspec.Struct, frozen=True, kw_only=True):
    event: EventInput
    member: MemberInput
    counters: tuple[CounterValue, ...] = ()


class CaseResult(msgspec.Struct, frozen=True, kw_only=True):
    evaluation: Evaluation
    baseline: Evaluation | None = None
    points_delta: int | None = None


class SimulationResult(msgspec.Struct, frozen=True, kw_only=True):
    program_version: str
    cases: tuple[CaseResult, ...]
    total_points: int
    points_by_rule: dict[str, int]
    baseline_version: str | None = None
    baseline_total_points: int | None = None
    points_delta: int | None = None
    rule_deltas: dict[str, int] | None = None


def simulate(
    program: Program,
    cases: Sequence[SimulationCase],
    baseline: Program | None = None,
    *,
    explain: bool = False,
) -> SimulationResult:
    results: list[CaseResult] = []
    by_rule: dict[str, int] = {}
    baseline_by_rule: dict[str, int] = {}
    for case in cases:
        counters = {c.key: c.value for c in case.counters}
        current = program.evaluate(case.event, case.member, counters, explain=explain)
        _add(by_rule, current)
        before = None
        if baseline is not None:
            before = baseline.evaluate(case.event, case.member, counters)
            _add(baseline_by_rule, before)
        results.append(
            CaseResult(
                evaluation=current,
                baseline=before,
                points_delta=None if before is None else current.total_points - before.total_points,
            )
        )
    total = sum(r.evaluation.total_points for r in results)
    if baseline is None:
        return SimulationResult(
            program_version=program.version_hash,
            cases=tuple(results),
            total_points=total,
            points_by_rule=by_rule,
        )
    baseline_total = sum(r.baseline.total_points for r in results if r.baseline is not None)
    rule_ids = sorted(set(by_rule) | set(baseline_by_rule))
    return SimulationResult(
        program_version=program.version_hash,
        cases=tuple(results),
        total_points=total,
        points_by_rule=by_rule,
        baseline_version=baseline.version_hash,
        baseline_total_points=baseline_total,
        points_delta=total - baseline_total,
        rule_deltas={r: by_rule.get(r, 0) - baseline_by_rule.get(r, 0) for r in rule_ids},
    )


def _add(totals: dict[str, int], evaluation: Evaluation) -> None:
    for rule_id, points in evaluation.points_by_rule().items():
        totals[rule_id] = totals.get(rule_id, 0) + points
