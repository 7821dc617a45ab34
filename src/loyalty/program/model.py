"""Programme version values as they cross the service boundary."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

from loyalty.rules import Diagnostic, SimulationCase, TestResult
from loyalty.rules.inputs import AwareDatetime

FileName = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")]
SourceText = Annotated[str, msgspec.Meta(max_length=1_000_000)]


class ProgramFiles(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A programme as text: the main file and any files it includes, by name."""

    source: SourceText
    name: FileName = "program.yaml"
    includes: dict[FileName, SourceText] = msgspec.field(default_factory=dict)

    def files(self) -> dict[str, str]:
        return {**self.includes, self.name: self.source}


class PublishRequest(ProgramFiles, frozen=True, kw_only=True, forbid_unknown_fields=True):
    # None means now; a later time schedules the version.
    activates_at: AwareDatetime | None = None
    note: Annotated[str, msgspec.Meta(max_length=2000)] | None = None


class BacktestWindow(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Replay the events that occurred in [start, end) instead of given cases."""

    start: AwareDatetime
    end: AwareDatetime
    limit: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 10_000


class SimulateRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What-if: a draft (or the active programme) against a batch of events, or
    (with `backtest`) against the stored events of a time window."""

    cases: Annotated[list[SimulationCase], msgspec.Meta(max_length=1000)] = msgspec.field(
        default_factory=list
    )
    backtest: BacktestWindow | None = None
    draft: ProgramFiles | None = None
    # Compare with the active version (only meaningful with a draft).
    compare: bool = True
    explain: bool = False


class ValidationReport(msgspec.Struct, frozen=True, kw_only=True):
    valid: bool
    diagnostics: list[Diagnostic]
    tests: list[TestResult]
    program_id: str | None = None
    content_hash: str | None = None
    rules: int = 0


class ProgramVersion(msgspec.Struct, frozen=True, kw_only=True):
    version: int
    program_id: str
    content_hash: str
    activates_at: datetime
    published_at: datetime
    published_by: str
    note: str | None
    rollback_of: int | None


class ProgramVersionDetail(ProgramVersion, frozen=True, kw_only=True):
    main_file: str
    sources: dict[str, str]


class ProgramVersionPage(msgspec.Struct, frozen=True):
    items: list[ProgramVersion]
    next_cursor: str | None
