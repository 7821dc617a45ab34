"""The job run log: a row when a run starts, completed when it ends."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert, select, update

from loyalty.db.engine import Database
from loyalty.db.paging import check_limit, decode_cursor, encode_cursor
from loyalty.db.schema import job_runs
from loyalty.scheduler.model import JobRun, JobRunPage


async def started(db: Database, job: str, instance: str, at: datetime) -> int:
    async with db.write() as conn:
        run_id = await conn.scalar(
            insert(job_runs)
            .values(job=job, instance=instance, status="running", started_at=at, counts={})
            .returning(job_runs.c.id)
        )
    assert run_id is not None
    return int(run_id)


async def finished(
    db: Database, run_id: int, at: datetime, counts: dict[str, int], error: str | None
) -> None:
    async with db.write() as conn:
        await conn.execute(
            update(job_runs)
            .where(job_runs.c.id == run_id)
            .values(
                status="failed" if error else "ok",
                finished_at=at,
                counts=counts,
                error=error[:2000] if error else None,
            )
        )


async def page(db: Database, limit: int = 50, after: str | None = None) -> JobRunPage:
    """Newest first; `after` is the cursor of the previous page."""
    check_limit(limit)
    before = decode_cursor(after)
    statement = select(job_runs).order_by(job_runs.c.id.desc()).limit(limit + 1)
    if before:
        statement = statement.where(job_runs.c.id < before)
    async with db.read() as conn:
        rows = (await conn.execute(statement)).all()
    items = [JobRun(**row._asdict()) for row in rows[:limit]]
    cursor = encode_cursor(items[-1].id) if len(rows) > limit and items else None
    return JobRunPage(items, cursor)
