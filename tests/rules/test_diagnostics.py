from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from loyalty.rules import Diagnostic, ProgramInvalid, compile_files, compile_program, compile_source

from .helpers import HEADER

BROKEN = Path(__file__).parent / "broken"
CORPUS = sorted(BROKEN.glob("*.yaml"))


def expected_of(path: Path) -> str:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# expect: "), f"{path.name} must start with '# expect: '"
    return first.removeprefix("# expect: ")


def test_corpus_is_large_enough() -> None:
    assert len(CORPUS) >= 30


@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_broken_programme_reports_file_line_column_and_message(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(BROKEN)  # so reported file names are as short as a marketer sees them
    with pytest.raises(ProgramInvalid) as caught:
        compile_program(path.name)
    reported = [str(d) for d in caught.value.diagnostics]
    assert expected_of(path) in reported


def test_all_errors_are_collected_not_just_the_first() -> None:
    text = (
        HEADER
        + """\
rules:
  - {id: a, on: purchase, when: {tier: gould}, award: {fixed: 1}}
  - {id: b, on: purchse, award: {fixed: 1}}
  - {id: c, on: purchase, award: {fixed: -1}, limits: [{max_times: 1, period: day}]}
  - {id: a, on: purchase, award: {fixed: 1}, limits: [{max_times: 1, period: mnth}]}
  - {id: d, on: purchase, multiply: 2}
"""
    )
    with pytest.raises(ProgramInvalid) as caught:
        compile_source(text, "program.yaml")
    lines = [d.line for d in caught.value.diagnostics]
    assert lines == [12, 13, 14, 15, 16]
    assert {d.rule_id for d in caught.value.diagnostics} == {"a", "b", "c", "d"}


def test_diagnostics_are_json_serialisable() -> None:
    with pytest.raises(ProgramInvalid) as caught:
        compile_source(HEADER + "rules: [{id: a, on: purchase, award: {fixd: 1}}]\n", "p.yaml")
    encoded = msgspec.json.encode(caught.value.diagnostics)
    decoded = msgspec.json.decode(encoded, type=list[Diagnostic])
    assert decoded == caught.value.diagnostics
    assert msgspec.to_builtins(decoded[0]) == {
        "file": "p.yaml",
        "line": 11,
        "column": 39,
        "message": "unknown field 'fixd' (did you mean 'fixed'?)",
        "rule_id": "a",
    }


def test_in_memory_files_can_include_each_other() -> None:
    files = {
        "main.yaml": HEADER
        + "include: [rules/earn.yaml]\nrules:\n  - {id: a, on: purchase, award: {fixed: 1}}\n",
        "rules/earn.yaml": "rules:\n  - {id: b, on: purchase, award: {fixed: 2}}\n",
    }
    program = compile_files(files, "main.yaml")
    assert [r.id for r in program.rules] == ["a", "b"]
    assert set(program.sources) == {"main.yaml", "rules/earn.yaml"}


def test_include_cycles_and_forbidden_sections_are_reported() -> None:
    files = {
        "main.yaml": HEADER + "include: [a.yaml]\nrules: []\n",
        "a.yaml": "include: [main.yaml]\ncurrency: USD\n",
    }
    with pytest.raises(ProgramInvalid) as caught:
        compile_files(files, "main.yaml")
    assert [str(d) for d in caught.value.diagnostics] == [
        "a.yaml:1:11: include cycle: 'main.yaml' is already being included",
        "a.yaml:2:1: 'currency' cannot come from an included file "
        "(rules, tests, tiers, stores, custom_dates can)",
    ]


def test_empty_and_non_mapping_programmes() -> None:
    for text, message in (
        ("", "the programme file is empty"),
        ("- a\n", "a programme must be a YAML mapping"),
    ):
        with pytest.raises(ProgramInvalid) as caught:
            compile_source(text, "p.yaml")
        assert [d.message for d in caught.value.diagnostics] == [message]


def test_reserved_sections_are_accepted_for_later_features() -> None:
    text = HEADER + "vesting: {note: later}\nrules: []\n"
    assert compile_source(text).spec.vesting == {"note": "later"}


def test_expiry_and_refund_policies_are_typed() -> None:
    text = (
        HEADER
        + "expiry: {policy: rolling_months, months: 12}\n"
        + "refunds: {shortfall: negative_balance}\nrules: []\n"
    )
    spec = compile_source(text).spec
    assert (spec.expiry.policy, spec.expiry.months) == ("rolling_months", 12)
    assert spec.refunds.shortfall == "negative_balance"
    assert compile_source(HEADER + "rules: []\n").spec.expiry.policy == "never"
