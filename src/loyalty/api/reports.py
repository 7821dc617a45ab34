"""/v1/reports: figures for finance, computed in the database."""

from __future__ import annotations

from litestar import Controller, get
from litestar.di import NamedDependency

from loyalty.api.security import allow
from loyalty.auth.keys import Role
from loyalty.ledger.reports import LiabilityReport, ReportService


class ReportController(Controller):
    path = "/reports"
    tags = ["reports"]

    @get("/liability", opt=allow(Role.MARKETER))
    async def liability(self, reports: NamedDependency[ReportService]) -> LiabilityReport:
        """Outstanding points (available, pending, held) and their money value at the
        active programme's point value, debt from negative balances kept apart, and
        when the available points expire, by calendar month (UTC)."""
        return await reports.liability()
