"""The scheduler: runs each job under its lock, records the run, and loops on cron."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import structlog
from croniter import croniter
from sqlalchemy import func, select

from loyalty.clock import Clock, SystemClock
from loyalty.db.engine import Database
from loyalty.db.schema import lots, members, redemptions
from loyalty.errors import NotFound
from loyalty.ledger.jobs import LedgerJobs
from loyalty.ledger.redemptions import RedemptionService
from loyalty.program.service import ProgramService
from loyalty.rules.calendars import zone
from loyalty.rules.schema import JobsSpec
from loyalty.scheduler import runs
from loyalty.scheduler.grants import GrantJob, Progress
from loyalty.scheduler.locks import job_lock
from loyalty.scheduler.model import JOBS, JobResult, JobRunPage
from loyalty.scheduler.notices import ExpiryNotices
from loyalty.tiers.service import TierService

log = structlog.get_logger("loyalty.scheduler")
Work = Callable[[datetime, bool, Progress | None], Awaitable[dict[str, int]]]


class Scheduler:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        programs: ProgramService,
        ledger_jobs: LedgerJobs,
        tiers: TierService,
        holds: RedemptionService,
        instance: str | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._programs = programs
        self.instance = instance or f"{socket.gethostname()}:{os.getpid()}"
        grants = GrantJob(db, programs)
        notices = ExpiryNotices(db, programs)
        self._jobs: dict[str, Work] = {
            "grants": lambda at, dry, progress: grants.run(at, dry_run=dry, progress=progress),
            "expiry_notices": lambda at, dry, _: notices.run(at, dry_run=dry),
            "expiry": lambda at, dry, _: self._ledger(
                at, dry, ledger_jobs.expire_due, lots.c.status == "available", lots.c.expires_at
            ),
            "vesting": lambda at, dry, _: self._ledger(
                at, dry, ledger_jobs.vest_due, lots.c.status == "pending", lots.c.vests_at
            ),
            "tier_review": lambda at, dry, _: self._tier_review(at, dry, tiers),
            "hold_timeouts": lambda at, dry, _: self._holds(at, dry, holds),
        }
        assert set(self._jobs) == set(JOBS)

    async def run(
        self,
        job: str,
        now: datetime | None = None,
        *,
        dry_run: bool = False,
        progress: Progress | None = None,
    ) -> JobResult:
        """Run one job now (or as of `now`). A dry run writes nothing, not even the
        run log, and needs no lock."""
        at = now or self._clock.now()
        work = self._jobs[job]
        if dry_run:
            return JobResult(
                job=job, ran=True, dry_run=True, counts=await _idle(work(at, True, progress))
            )
        async with job_lock(self._db, job) as held:
            if not held:
                log.info("job_skipped", job=job, reason="running on another instance")
                return JobResult(job=job, ran=False, dry_run=False, counts={})
            run_id = await runs.started(self._db, job, self.instance, at)
            counts: dict[str, int] = {}
            error = None
            try:
                counts = await _idle(work(at, False, progress))
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                log.exception("job_failed", job=job, run=run_id)
            await runs.finished(self._db, run_id, self._clock.now(), counts, error)
        # The one summary line per run: counts only, never who.
        log.info("job_done", job=job, run=run_id, ok=error is None, **counts)
        return JobResult(job=job, ran=True, dry_run=False, counts=counts, error=error)

    async def runs(self, limit: int = 50, after: str | None = None) -> JobRunPage:
        return await runs.page(self._db, limit, after)

    async def loop(self, stop: asyncio.Event) -> None:
        """Run every job on its cron schedule (programme time zone) until `stop`.
        Real time: sleeping on a test clock would never wake."""
        clock = SystemClock()
        last = dict.fromkeys(JOBS, clock.now())
        log.info("scheduler_started", instance=self.instance)
        while not stop.is_set():
            try:
                wake = await self._tick(clock, last, stop)
            except Exception:
                # The database may be away for a while: keep the loop, try again soon.
                log.exception("scheduler_tick_failed", instance=self.instance)
                wake = clock.now()
            seconds = max((wake - clock.now()).total_seconds(), 1.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=min(seconds, 60.0))
        log.info("scheduler_stopped", instance=self.instance)

    async def _tick(self, clock: Clock, last: dict[str, datetime], stop: asyncio.Event) -> datetime:
        """Run the jobs whose time has come; returns when the next one is due."""
        timings, tz = await self._timings(clock.now())

        def next_run(job: str) -> datetime:
            when: datetime = croniter(getattr(timings, job), last[job].astimezone(tz)).get_next(
                datetime
            )
            return when

        upcoming = {job: next_run(job) for job in JOBS}
        for job, when in upcoming.items():
            if when <= clock.now() and not stop.is_set():
                last[job] = clock.now()
                await self.run(job, last[job])
                upcoming[job] = next_run(job)
        return min(upcoming.values())

    async def _timings(self, at: datetime) -> tuple[JobsSpec, Any]:
        try:
            _, program = await self._programs.active(at)
        except NotFound:
            return JobsSpec(), zone("UTC")
        return program.spec.scheduled.jobs, zone(program.info.timezone)

    async def _ledger(
        self, at: datetime, dry: bool, work: Callable[[datetime], Awaitable[int]], *due: Any
    ) -> dict[str, int]:
        if not dry:
            return {"points": await work(at)}
        status, when = due
        async with self._db.read() as conn:
            count, points = (
                await conn.execute(
                    select(func.count(), func.coalesce(func.sum(lots.c.remaining), 0)).where(
                        status, when <= at
                    )
                )
            ).one()
        return {"lots": int(count), "points": int(points)}

    async def _tier_review(self, at: datetime, dry: bool, tiers: TierService) -> dict[str, int]:
        if dry:
            due = (members.c.tier_valid_until <= at) | (members.c.manual_tier_until <= at)
            return {"reviewed": await self._count(select(func.count()).where(due))}
        summary = await tiers.review(at)
        return {name: getattr(summary, name) for name in summary.__struct_fields__}

    async def _holds(self, at: datetime, dry: bool, holds: RedemptionService) -> dict[str, int]:
        if dry:
            due = (redemptions.c.state == "held") & (redemptions.c.expires_at <= at)
            return {"released": await self._count(select(func.count()).where(due))}
        return {"released": await holds.release_expired(at)}

    async def _count(self, statement: Any) -> int:
        async with self._db.read() as conn:
            return int(await conn.scalar(statement) or 0)


async def _idle(work: Awaitable[dict[str, int]]) -> dict[str, int]:
    """No programme published yet: the programme-driven jobs have nothing to do."""
    try:
        return await work
    except NotFound as exc:
        if exc.code != "no_active_program":
            raise
        return {}
