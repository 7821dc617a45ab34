"""Run the `tests:` section of a programme: marketers' own examples as executable checks."""

from __future__ import annotations

from datetime import date as Date
from datetime import datetime, time

import msgspec

from .calendars import zone
from .diagnostics import Diagnostic
from .engine import Program
from .inputs import EventInput, MemberInput
from .outputs import CounterKey, Evaluation
from .schema import TestCounter, TestSpec

# A plain Wednesday with no public holiday in most calendars, so tests that omit the
# time are not accidentally affected by weekend or festival rules.
DEFAULT_TEST_DAY = Date(2025, 3, 12)
DEFAULT_TEST_TIME = time(12, 0)


class TestResult(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    passed: bool
    failures: tuple[str, ...]
    evaluation: Evaluation
    diagnostic: Diagnostic | None = None

    def report(self) -> str:
        if self.passed:
            return f"PASS {self.name}"
        return f"FAIL {self.name}\n" + "\n".join(f"  {line}" for line in self.failures)


def run_program_tests(program: Program) -> list[TestResult]:
    return [_run(program, index, test) for index, test in enumerate(program.tests)]


def build_inputs(program: Program, test: TestSpec) -> tuple[EventInput, MemberInput]:
    """Turn a test's member and event into engine inputs; naive times are programme-local."""
    tz = zone(program.info.timezone)

    def aware(value: datetime | None) -> datetime | None:
        if value is None or value.tzinfo is not None:
            return value
        return value.replace(tzinfo=tz)

    spec_event, spec_member = test.event, test.member
    occurred_at = aware(spec_event.occurred_at) or datetime.combine(
        DEFAULT_TEST_DAY, DEFAULT_TEST_TIME, tz
    )
    event = EventInput(
        type=spec_event.type,
        name=spec_event.name,
        occurred_at=occurred_at,
        order_id=spec_event.order_id,
        store_id=spec_event.store_id,
        channel=spec_event.channel,
        currency=spec_event.currency or program.info.currency,
        total=spec_event.total,
        payment_method=spec_event.payment_method,
        items=tuple(spec_event.items),
        attributes=dict(spec_event.attributes),
    )
    member = MemberInput(
        member_id=spec_member.id,
        tier=spec_member.tier,
        tags=frozenset(spec_member.tags),
        attributes=dict(spec_member.attributes),
        joined_at=aware(spec_member.joined),
        birthday=spec_member.birthday,
        timezone=spec_member.timezone,
    )
    return event, member


def _counters(
    program: Program, event: EventInput, member: MemberInput, given: list[TestCounter]
) -> tuple[dict[CounterKey, int], list[str]]:
    keys = program.counter_keys(event, member)
    values: dict[CounterKey, int] = {}
    problems: list[str] = []
    for counter in given:
        matching = [
            key
            for key in keys
            if (key.rule_id, key.unit, key.scope) == (counter.rule, counter.unit, counter.scope)
        ]
        if not matching:
            problems.append(
                f"counter {counter.rule} ({counter.scope} {counter.unit}) is not read by any "
                "limit of that rule for this event"
            )
        for key in matching:
            values[key] = counter.value
    return values, problems


def _run(program: Program, index: int, test: TestSpec) -> TestResult:
    event, member = build_inputs(program, test)
    counters, failures = _counters(program, event, member, test.counters)
    result = program.evaluate(event, member, counters, explain=True)
    failures.extend(_compare(test, result))
    if failures:
        failures.extend(_story(result))
    diagnostic = None
    if failures:
        mark = program.tree.mark(("tests", index))
        diagnostic = Diagnostic.at(mark, f"test '{test.name}' failed: {failures[0]}")
    return TestResult(
        name=test.name,
        passed=not failures,
        failures=tuple(failures),
        evaluation=result,
        diagnostic=diagnostic,
    )


def _compare(test: TestSpec, result: Evaluation) -> list[str]:
    expect = test.expect
    failures: list[str] = []
    if expect.points is not None and expect.points != result.total_points:
        failures.append(f"expected {expect.points} points, got {result.total_points}")
    if expect.pending_points is not None and expect.pending_points != result.pending_points:
        failures.append(
            f"expected {expect.pending_points} pending points, got {result.pending_points}"
        )
    fired = set(result.fired)
    if expect.rules is not None:
        missing = [r for r in expect.rules if r not in fired]
        extra = sorted(fired - set(expect.rules))
        if missing:
            failures.append(f"expected rules to fire but they did not: {', '.join(missing)}")
        if extra:
            failures.append(f"rules fired that were not expected: {', '.join(extra)}")
    unwanted = [r for r in expect.not_rules or () if r in fired]
    if unwanted:
        failures.append(f"rules fired that should not have: {', '.join(unwanted)}")
    if expect.tags is not None and set(expect.tags) != set(result.tags):
        failures.append(f"expected tags [{', '.join(expect.tags)}], got [{', '.join(result.tags)}]")
    return failures


def _story(result: Evaluation) -> list[str]:
    lines = [
        f"fired: {award.rule_id} +{award.points}" + (" (capped)" if award.capped else "")
        for award in result.awards
    ]
    points = {award.rule_id for award in result.awards}
    lines.extend(
        f"fired: {rule_id} (no points)" for rule_id in result.fired if rule_id not in points
    )
    lines.extend(
        f"did not fire: {trace.rule_id}: {trace.reason}"
        for trace in result.not_fired
        if not trace.reason.startswith("runs on ")
    )
    return lines
