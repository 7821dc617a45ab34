"""YAML programme format, compiler and pure evaluation engine.

program = compile_program("examples/tea-house.yaml")
keys = program.counter_keys(event, member)          # the ledger reads these totals
result = program.evaluate(event, member, counters)  # awards, tags, counter increments
"""

from .compiler import compile_files, compile_program, compile_source, read_program_files
from .diagnostics import Diagnostic, ProgramInvalid
from .engine import Program
from .inputs import EventInput, LineItem, MemberInput
from .outputs import Award, CounterIncrement, CounterKey, Evaluation, RuleTrace
from .simulate import CaseResult, CounterValue, SimulationCase, SimulationResult, simulate
from .testing import TestResult, run_program_tests

__all__ = [
    "Award",
    "CaseResult",
    "CounterIncrement",
    "CounterKey",
    "CounterValue",
    "Diagnostic",
    "Evaluation",
    "EventInput",
    "LineItem",
    "MemberInput",
    "Program",
    "ProgramInvalid",
    "RuleTrace",
    "SimulationCase",
    "SimulationResult",
    "TestResult",
    "compile_files",
    "compile_program",
    "compile_source",
    "read_program_files",
    "run_program_tests",
    "simulate",
]
