"""/v1/program: validate, publish, list, roll back and simulate programme versions."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromQuery, JSONBody

from loyalty.api.params import RowId
from loyalty.api.security import allow
from loyalty.auth.keys import Principal, Role
from loyalty.ledger.backtest import Backtester, BacktestResult
from loyalty.program.model import (
    ProgramFiles,
    ProgramVersion,
    ProgramVersionDetail,
    ProgramVersionPage,
    PublishRequest,
    SimulateRequest,
    ValidationReport,
)
from loyalty.program.service import ProgramService
from loyalty.rules.simulate import SimulationResult

MARKETERS = allow(Role.MARKETER)


class ProgramController(Controller):
    path = "/program"
    tags = ["program"]

    @get(opt=MARKETERS)
    async def active(self, programs: NamedDependency[ProgramService]) -> ProgramVersionDetail:
        """The version in force now."""
        version, _ = await programs.active()
        return await programs.get(version.version)

    @post("/validate", status_code=200, opt=MARKETERS)
    async def validate(
        self, data: JSONBody[ProgramFiles], programs: NamedDependency[ProgramService]
    ) -> ValidationReport:
        """Compile and run the programme's tests; every error with file, line and column."""
        return programs.validate(data.files(), data.name)

    @post("/versions", opt=MARKETERS)
    async def publish(
        self,
        request: Request[Principal, Any, Any],
        data: JSONBody[PublishRequest],
        programs: NamedDependency[ProgramService],
    ) -> Response[ProgramVersion]:
        """Publish a validated version, now or at `activates_at`.

        422 `program_invalid` or `program_tests_failed` when it does not validate; the
        same files published again return the existing version with 200.
        """
        version, created = await programs.publish(
            data.files(),
            data.name,
            actor=request.user.label,
            activates_at=data.activates_at,
            note=data.note,
        )
        return Response(version, status_code=201 if created else 200)

    @get("/versions", opt=MARKETERS)
    async def versions(
        self,
        programs: NamedDependency[ProgramService],
        limit: FromQuery[int] = 50,
        after: FromQuery[str | None] = None,
    ) -> ProgramVersionPage:
        """Published versions, newest first."""
        return await programs.list(limit, after)

    @get("/versions/{version:int}", opt=MARKETERS)
    async def version(
        self, version: RowId, programs: NamedDependency[ProgramService]
    ) -> ProgramVersionDetail:
        return await programs.get(version)

    @post("/versions/{version:int}/rollback", opt=MARKETERS)
    async def rollback(
        self,
        request: Request[Principal, Any, Any],
        version: RowId,
        programs: NamedDependency[ProgramService],
    ) -> ProgramVersion:
        """Make an earlier version active again, now (recorded as a new version)."""
        return await programs.rollback(version, actor=request.user.label)

    @post("/simulate", status_code=200, opt=MARKETERS)
    async def simulate(
        self,
        data: JSONBody[SimulateRequest],
        programs: NamedDependency[ProgramService],
        backtester: NamedDependency[Backtester],
    ) -> SimulationResult | BacktestResult:
        """Awards for each event under a draft (or the active version), with the
        difference from the active version per event and per rule. With `backtest`,
        the stored events of that window are replayed instead and compared, rule by
        rule, with the points actually recorded. Nothing is written."""
        if data.backtest is not None:
            return await backtester.run(data)
        return await programs.simulate(data)
