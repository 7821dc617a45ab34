"""/v1/jobs: the scheduler's run log, for operators."""

from __future__ import annotations

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromQuery

from loyalty.api.security import allow
from loyalty.scheduler.model import JobRunPage
from loyalty.scheduler.service import Scheduler


class JobController(Controller):
    path = "/jobs"
    tags = ["jobs"]

    # No role named: admins only.
    @get("/runs", opt=allow())
    async def runs(
        self,
        scheduler: NamedDependency[Scheduler],
        limit: FromQuery[int] = 50,
        after: FromQuery[str | None] = None,
    ) -> JobRunPage:
        """Scheduler job runs, newest first: job, instance, start, end, counts, error.
        Page on with `after=next_cursor`."""
        return await scheduler.runs(limit, after)
