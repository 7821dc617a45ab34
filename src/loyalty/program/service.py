"""Programme use cases: validate, publish, roll back, list, resolve the active version.

Publishing is append-only. The version that judges an event is the one with the
latest activation time at or before the event; a rollback publishes an earlier
version's files again, now. Compiled programmes are cached per version (they never
change), and the activation timeline is re-read every few seconds so that every
worker sees a publish made by another.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TypeVar

import msgspec
from sqlalchemy import insert, select
from sqlalchemy.engine import RowMapping

from loyalty.clock import Clock
from loyalty.db.engine import Database
from loyalty.db.paging import check_limit, decode_cursor, encode_cursor
from loyalty.db.schema import program_versions
from loyalty.errors import FieldError, InvalidInput, NotFound
from loyalty.program.model import (
    ProgramVersion,
    ProgramVersionDetail,
    ProgramVersionPage,
    SimulateRequest,
    ValidationReport,
)
from loyalty.rules import Program, ProgramInvalid, compile_files, run_program_tests, simulate
from loyalty.rules.simulate import SimulationResult

VersionT = TypeVar("VersionT", bound=ProgramVersion)
_SUMMARY_COLUMNS = [
    program_versions.c[name]
    for name in (
        "id",
        "program_id",
        "content_hash",
        "activates_at",
        "published_at",
        "published_by",
        "note",
        "rollback_of",
    )
]


class ProgramRejected(InvalidInput):
    """A programme with errors or failing tests; never published."""


def check_program(compile: Callable[[], Program]) -> tuple[Program | None, ValidationReport]:
    """Compile and run the programme's own tests. Pure: no database."""
    try:
        program = compile()
    except ProgramInvalid as exc:
        return None, ValidationReport(valid=False, diagnostics=exc.diagnostics, tests=[])
    tests = run_program_tests(program)
    report = ValidationReport(
        valid=all(test.passed for test in tests),
        diagnostics=[],
        tests=tests,
        program_id=program.id,
        content_hash=program.version_hash,
        rules=len(program.rules),
    )
    return program, report


def _rejection(report: ValidationReport) -> ProgramRejected:
    if report.diagnostics:
        first = str(report.diagnostics[0])
        count = len(report.diagnostics)
        return ProgramRejected(
            "program_invalid",
            f"the programme has {count} error(s), first: {first}",
            extra={"diagnostics": msgspec.to_builtins(report.diagnostics)},
        )
    failed = [test for test in report.tests if not test.passed]
    names = ", ".join(test.name for test in failed)
    return ProgramRejected(
        "program_tests_failed",
        f"{len(failed)} programme test(s) failed: {names}",
        extra={"tests": [{"name": t.name, "failures": list(t.failures)} for t in failed]},
    )


class ProgramService:
    def __init__(self, db: Database, clock: Clock, refresh_seconds: float) -> None:
        self._db = db
        self._clock = clock
        self._refresh_seconds = refresh_seconds
        self._compiled: dict[int, tuple[ProgramVersion, Program]] = {}
        # (activates_at, version) ascending; refreshed when older than refresh_seconds.
        self._timeline: list[tuple[datetime, int]] = []
        self._timeline_read_at = float("-inf")

    def validate(self, files: Mapping[str, str], main: str) -> ValidationReport:
        return check_program(lambda: compile_files(files, main))[1]

    async def publish(
        self,
        files: Mapping[str, str],
        main: str,
        *,
        actor: str,
        activates_at: datetime | None = None,
        note: str | None = None,
        rollback_of: int | None = None,
    ) -> tuple[ProgramVersion, bool]:
        """Publish a version; returns it and whether it is new.

        Publishing the same files again with no activation time returns the latest
        version unchanged, so a retried publish does not stack versions.
        """
        program, report = check_program(lambda: compile_files(files, main))
        if program is None or not report.valid:
            raise _rejection(report)
        now = self._clock.now()
        # An activation time given with the request wins over the one in the file.
        activates_at = activates_at or program.activates_at
        if activates_at is not None and activates_at < now:
            message = (
                "activation time is in the past; past events keep the version that judged them"
            )
            raise InvalidInput.from_fields([FieldError("activates_at", "in_the_past", message)])
        async with self._db.write() as conn:
            latest = (
                await conn.execute(
                    select(*_SUMMARY_COLUMNS).order_by(program_versions.c.id.desc()).limit(1)
                )
            ).one_or_none()
            if (
                latest is not None
                and activates_at is None
                and rollback_of is None
                and latest.content_hash == program.version_hash
            ):
                return _to_version(latest._mapping), False
            row = (
                await conn.execute(
                    insert(program_versions)
                    .values(
                        program_id=program.id,
                        content_hash=program.version_hash,
                        main_file=main,
                        sources=dict(files),
                        activates_at=activates_at or now,
                        published_at=now,
                        published_by=actor,
                        note=note,
                        rollback_of=rollback_of,
                    )
                    .returning(*_SUMMARY_COLUMNS)
                )
            ).one()
        version = _to_version(row._mapping)
        self._compiled[version.version] = (version, program)
        self._timeline_read_at = float("-inf")
        return version, True

    async def rollback(self, version: int, *, actor: str) -> ProgramVersion:
        """Make an earlier version active again, now, as a new version."""
        earlier = await self.get(version)
        published, _ = await self.publish(
            earlier.sources,
            earlier.main_file,
            actor=actor,
            note=f"rollback to version {version}",
            rollback_of=version,
        )
        return published

    async def get(self, version: int) -> ProgramVersionDetail:
        async with self._db.read() as conn:
            row = (
                await conn.execute(select(program_versions).where(program_versions.c.id == version))
            ).one_or_none()
        if row is None:
            raise NotFound("program_version_not_found", f"no programme version {version}")
        return _convert(row._mapping, ProgramVersionDetail)

    async def list(self, limit: int = 50, after: str | None = None) -> ProgramVersionPage:
        """Newest first."""
        check_limit(limit)
        before = decode_cursor(after)
        statement = select(*_SUMMARY_COLUMNS).order_by(program_versions.c.id.desc())
        if before:
            statement = statement.where(program_versions.c.id < before)
        async with self._db.read() as conn:
            rows = (await conn.execute(statement.limit(limit + 1))).all()
        page = rows[:limit]
        cursor = encode_cursor(page[-1].id) if len(rows) > limit and page else None
        return ProgramVersionPage([_to_version(row._mapping) for row in page], cursor)

    async def active(
        self, at: datetime | None = None, *, earliest_if_before: bool = False
    ) -> tuple[ProgramVersion, Program]:
        """The version in force at `at` (default now), compiled.

        With `earliest_if_before`, a moment before the first activation gets the first
        version: events from before the launch (backfills, offline tills) are judged
        by the first programme rather than refused.
        """
        when = at or self._clock.now()
        version = await self._version_at(when)
        if version is None and earliest_if_before:
            version = await self._version_at(self._clock.now())
            version = self._timeline[0][1] if version is not None else None
        if version is None:
            raise NotFound(
                "no_active_program",
                "no programme version is active yet: publish one with "
                "`loyalty program publish FILE` or POST /v1/program/versions",
            )
        return await self._loaded(version)

    async def draft_or_active(self, request: SimulateRequest) -> Program:
        """The request's draft, compiled and tested, or the active programme."""
        if request.draft is None:
            return (await self.active())[1]
        files, main = request.draft.files(), request.draft.name
        draft, report = check_program(lambda: compile_files(files, main))
        if draft is None:
            raise _rejection(report)
        return draft

    async def simulate(self, request: SimulateRequest) -> SimulationResult:
        if not request.cases:
            raise InvalidInput.from_fields(
                [FieldError("cases", "required", "give cases, or a backtest window")]
            )
        if request.draft is None:
            _, program = await self.active()
            baseline = None
        else:
            files, main = request.draft.files(), request.draft.name
            draft, report = check_program(lambda: compile_files(files, main))
            if draft is None:
                raise _rejection(report)
            program = draft
            baseline = (await self.active())[1] if request.compare else None
        return simulate(program, request.cases, baseline, explain=request.explain)

    async def _version_at(self, when: datetime) -> int | None:
        if time.monotonic() - self._timeline_read_at > self._refresh_seconds:
            async with self._db.read() as conn:
                rows = await conn.execute(
                    select(program_versions.c.activates_at, program_versions.c.id).order_by(
                        program_versions.c.activates_at, program_versions.c.id
                    )
                )
                self._timeline = [(row.activates_at, row.id) for row in rows]
            self._timeline_read_at = time.monotonic()
        return _latest_at(self._timeline, when)

    async def _loaded(self, version: int) -> tuple[ProgramVersion, Program]:
        """A version and its compiled programme, read and compiled once per process:
        versions never change, and this is on every event's path."""
        loaded = self._compiled.get(version)
        if loaded is None:
            detail = await self.get(version)
            loaded = (_summary(detail), compile_files(detail.sources, detail.main_file))
            self._compiled[version] = loaded
        return loaded


def _latest_at(timeline: Sequence[tuple[datetime, int]], when: datetime) -> int | None:
    chosen = None
    for activates_at, version in timeline:
        if activates_at > when:
            break
        chosen = version
    return chosen


def _to_version(row: RowMapping) -> ProgramVersion:
    return _convert(row, ProgramVersion)


def _convert(row: RowMapping, kind: type[VersionT]) -> VersionT:
    # The table's `id` is what the API calls the version number.
    fields = {name: row["id" if name == "version" else name] for name in kind.__struct_fields__}
    return msgspec.convert(fields, kind, strict=False, from_attributes=False)


def _summary(detail: ProgramVersionDetail) -> ProgramVersion:
    fields = {name: getattr(detail, name) for name in ProgramVersion.__struct_fields__}
    return ProgramVersion(**fields)
