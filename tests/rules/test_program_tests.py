from __future__ import annotations

from pathlib import Path

from loyalty.rules import compile_program, compile_source, run_program_tests

from .helpers import HEADER

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "tea-house.yaml"

PROGRAMME = (
    HEADER
    + """\
rules:
  - {id: base, on: purchase, award: {per_amount: "1.00"}, pending_days: 14}
  - {id: gold, on: purchase, when: {tier: gold}, multiply: 2, applies_to: base}
tests:
  - name: gold doubles
    member: { tier: gold }
    event: { type: purchase, total: "88.00" }
    expect: { points: 176, pending_points: 176, rules: [base, gold] }
  - name: wrong on purpose
    member: { tier: silver }
    event: { type: purchase, total: "88.00" }
    expect: { points: 176, rules: [base, gold], tags: [x] }
"""
)


def test_passing_and_failing_cases_with_readable_messages() -> None:
    passed, failed = run_program_tests(compile_source(PROGRAMME, "program.yaml"))
    assert passed.passed
    assert passed.failures == ()
    assert passed.diagnostic is None
    assert not failed.passed
    assert failed.failures[:3] == (
        "expected 176 points, got 88",
        "expected rules to fire but they did not: gold",
        "expected tags [x], got []",
    )
    assert "fired: base +88" in failed.failures
    assert "did not fire: gold: member tier is 'silver', needs one of gold" in failed.failures
    assert str(failed.diagnostic) == (
        "program.yaml:19:5: test 'wrong on purpose' failed: expected 176 points, got 88"
    )
    assert failed.report().startswith("FAIL wrong on purpose\n  expected 176 points, got 88")


def test_example_programme_compiles_and_all_its_tests_pass() -> None:
    program = compile_program(EXAMPLE)
    results = run_program_tests(program)
    assert len(results) >= 10
    assert [r.name for r in results if not r.passed] == []
    assert 15 <= len(program.rules) <= 25


def test_version_hash_ignores_comments_and_layout_but_not_content() -> None:
    program = compile_source(PROGRAMME)
    reformatted = compile_source(
        "# a comment\n" + PROGRAMME.replace("{ tier: gold }", "{tier: gold}")
    )
    changed = compile_source(
        PROGRAMME.replace(
            '"88.00" }\n    expect: { points: 176, p', '"89.00" }\n    expect: { points: 176, p'
        )
    )
    assert program.version_hash == reformatted.version_hash
    assert program.version_hash != changed.version_hash
    assert program.source == PROGRAMME
